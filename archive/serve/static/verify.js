// Progress of a running verification, then the page again with its result.
(function () {
  var bar = document.getElementById("progress");
  if (!bar) return;
  var label = document.getElementById("percent");
  function poll() {
    fetch(bar.dataset.status, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
      bar.value = s.percent || 0;
      if (label) label.textContent = (s.percent || 0) + "%";
      if (s.state === "done" || s.state === "failed" || s.state === "none") { location.reload(); }
      else { setTimeout(poll, 500); }
    }).catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 300);
})();
