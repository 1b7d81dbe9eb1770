// The console's bootstrap, a classic script that runs before the modules:
// when one of them fails to load — a browser on the machine that runs
// coligo sees the network change each time a container's interface comes
// or goes (ERR_NETWORK_CHANGED), and aborts what it was loading — the page
// loads itself again, a few times, then says so and offers a button.
(function () {
  var tries = Number(new URLSearchParams(location.search).get('retry') || 0);
  window.addEventListener('error', function (e) {
    var t = e.target;
    var failed = t && (t.tagName === 'SCRIPT' || t.tagName === 'LINK' && t.rel === 'stylesheet');
    if (!failed || window.__coligoStarted) return;
    if (tries < 3) {
      setTimeout(function () {
        location.replace(location.pathname + '?retry=' + (tries + 1) + location.hash);
      }, 300 * (tries + 1));
      return;
    }
    var main = document.getElementById('main');
    var p = document.createElement('p');
    p.className = 'error';
    p.setAttribute('role', 'alert');
    p.textContent = 'The console did not load: the network failed while it was loading. ';
    var b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Load it again';
    b.addEventListener('click', function () { location.replace(location.pathname + location.hash); });
    p.append(b);
    main.replaceChildren(p);
  }, true);
})();
