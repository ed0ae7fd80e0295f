"""Browser profiles: a logged-in browser's cookies and local storage, kept encrypted at
rest in a folder of their own, for captures behind a login."""
