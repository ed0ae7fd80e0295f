"""A problem found while checking, and where it is; a bounded list of them."""

from __future__ import annotations

from dataclasses import dataclass

@dataclass
class Problem:
    message: str
    file: str | None = None
    offset: int | None = None
    record_id: str | None = None
    uri: str | None = None

    def where(self) -> str:
        parts = [self.file or ""]
        if self.offset is not None:
            parts.append(f"byte offset {self.offset}")
        if self.record_id:
            parts.append(f"record {self.record_id}")
        if self.uri:
            parts.append(self.uri)
        return ", ".join(p for p in parts if p)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


PROBLEM_LIMIT = 1000            # problems kept for one file or member; the rest are counted


class Problems(list):
    """The problems of a file or member. A hostile one can have one in every line or
    record, millions of them: PROBLEM_LIMIT are kept, the rest counted in `more`."""

    more = 0

    def append(self, problem: Problem) -> None:
        if len(self) < PROBLEM_LIMIT:
            super().append(problem)
        else:
            self.more += 1

    def extend(self, problems) -> None:
        for problem in problems:
            self.append(problem)

    @property
    def total(self) -> int:
        return len(self) + self.more

    def all(self) -> list[Problem]:
        """Those kept, then one saying how many more there were."""
        if not self.more:
            return list(self)
        return list(self) + [Problem(f"... and {self.more} more problems, not listed", self[-1].file)]

    @staticmethod
    def joined(groups) -> "Problems":
        out = Problems()
        for group in groups:
            out.extend(group)
            out.more += getattr(group, "more", 0)
        return out
