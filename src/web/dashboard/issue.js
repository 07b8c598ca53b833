// The issue page's live progress: counts, rate and time left from the
// Server-Sent Events of data-events, until nothing is left to send.
(function () {
  var box = document.getElementById('counts');
  if (!window.EventSource || !box) return;
  var source = new EventSource(box.getAttribute('data-events'));
  source.addEventListener('progress', function (e) {
    var p = JSON.parse(e.data);
    Object.keys(p.counts).forEach(function (s) {
      var el = box.querySelector('[data-count="' + s + '"]');
      if (el) el.textContent = p.counts[s];
    });
    document.getElementById('sent-so-far').textContent = p.accepted;
    document.getElementById('rate').textContent = p.rate;
    document.getElementById('left').textContent = p.left;
    if (p.done) source.close();
  });
})();
