/*! consentflow website kit, cf.js: page views, events, consent pop-up, form capture. Plain ES2017, no dependencies. */
(function (w, d) {
  'use strict';
  var before = w.cf;
  if (before && before.version) return;
  var me = d.currentScript || d.querySelector('script[src*="cf.js"][data-write-key]');
  var cfg = me ? me.dataset : {};
  if (!cfg.writeKey) {
    if (w.console) console.error('cf.js: put data-write-key="wk_…" on its <script> tag');
    return;
  }
  var VERSION = '1';
  var KEY = cfg.writeKey;
  var BASE = me.src.replace(/cf\.js([?#].*)?$/, '');
  var LANG = /^pl\b/i.test(cfg.lang || d.documentElement.lang || navigator.language || '') ? 'pl' : 'en';
  var FLUSH_MS = Number(cfg.flushMs) || 1000;
  // Global Privacy Control: this browser is never identified, whatever else happens.
  var GPC = navigator.globalPrivacyControl === true;
  var K_AID = 'cf_aid';
  var K_UID = 'cf_uid';
  var K_CHOICE = 'cf_consent';

  function get(k) { try { return w.localStorage.getItem(k); } catch (e) { return null; } }
  function put(k, v) { try { w.localStorage.setItem(k, v); } catch (e) { /* storage off: nothing kept */ } }
  function del(k) { try { w.localStorage.removeItem(k); } catch (e) { /* nothing to remove */ } }
  function parse(s) { try { return s ? JSON.parse(s) : null; } catch (e) { return null; } }
  function assign(t) {
    for (var i = 1; i < arguments.length; i++) for (var k in arguments[i]) if (Object.prototype.hasOwnProperty.call(arguments[i], k)) t[k] = arguments[i][k];
    return t;
  }
  function hex(bytes) { return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join(''); }
  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = hex(b);
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }
  function warn(err) { if (w.console) console.warn(err && err.message ? err.message : err); }
  function emit(target, name, detail) { target.dispatchEvent(new CustomEvent(name, { bubbles: true, detail: detail })); }

  // What the visitor chose ({n: notice id, v: version, g: granted purposes, l: may link events}) and,
  // only while that allows linking, the anonymous id. Nothing is read or written before a choice.
  var choice = parse(get(K_CHOICE));
  var aid = choice && choice.l ? get(K_AID) : null;
  if (choice && choice.l && !aid) choice = null; // consent given for an id this browser lost: ask again
  var uid = null;
  var pendingIdentify = null;
  function linked() { return !GPC && !!(choice && choice.l && aid); }
  if (linked()) uid = get(K_UID);

  function post(path, body) {
    return fetch(BASE + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain' }, keepalive: true, credentials: 'omit' });
  }
  function send(path, body) {
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(BASE + path, new Blob([JSON.stringify(body)], { type: 'text/plain' }))) return;
    } catch (e) { /* fall back to fetch */ }
    post(path, body).catch(warn);
  }

  function pageProps() {
    return { path: location.pathname, url: location.href, title: d.title, referrer: d.referrer, search: location.search };
  }
  var library = { name: 'consentflow-kit', version: VERSION };

  // Two queues: events of a visitor who may be identified, and bare counts of one who may not.
  var queue = { b: [], a: [] };
  var timer = 0;
  var consentSent = Promise.resolve();
  function enqueue(ev) {
    if (linked()) {
      ev.anonymousId = aid;
      if (uid) ev.userId = uid;
      ev.messageId = uuid();
      ev.timestamp = new Date().toISOString();
      ev.context = { page: pageProps(), locale: navigator.language, userAgent: navigator.userAgent, library: library };
      queue.b.push(ev);
    } else if (ev.type === 'track') {
      queue.a.push({ type: 'track', event: ev.event });
    } else if (ev.type === 'page') {
      queue.a.push(ev.name ? { type: 'page', name: ev.name } : { type: 'page' });
    } else {
      return; // an identify without consent is kept for this page only (pendingIdentify)
    }
    if (queue.b.length + queue.a.length >= 20) flush();
    else if (!timer) timer = setTimeout(flush, FLUSH_MS);
  }
  function flush() {
    clearTimeout(timer);
    timer = 0;
    var q = queue;
    queue = { b: [], a: [] };
    if (q.a.length) send('anonymous', { writeKey: KEY, batch: q.a });
    // After the consent request under way, so the engine links these events to it.
    if (q.b.length) consentSent.then(function () { send('batch', { writeKey: KEY, sentAt: new Date().toISOString(), batch: q.b }); });
  }
  d.addEventListener('visibilitychange', function () { if (d.visibilityState === 'hidden') flush(); });
  w.addEventListener('pagehide', flush);

  var notices = {};
  function loadNotice(ids) {
    var url = BASE + 'consent/notice?writeKey=' + encodeURIComponent(KEY) + '&lang=' + LANG + (ids ? '&id=' + encodeURIComponent(ids) : '');
    if (!notices[url]) {
      notices[url] = fetch(url, { credentials: 'omit' }).then(function (r) {
        return r.json().then(function (j) {
          if (!r.ok) throw new Error('cf.js: the consent notice could not be read (' + r.status + (j && j.error ? ': ' + j.error.message : '') + ')');
          return j;
        });
      });
      notices[url].catch(function () { delete notices[url]; });
    }
    return notices[url];
  }

  function decide(info, wanted) {
    var grant = [];
    var withdraw = [];
    var link = false;
    info.purposes.forEach(function (p) {
      if (wanted[p.name]) {
        grant.push(p.name);
        if (p.linksEvents) link = true;
      } else withdraw.push(p.name);
    });
    link = link && !GPC;
    var previous = aid || get(K_AID);
    if (link) aid = previous || uuid();
    var body = {
      writeKey: KEY, grant: grant, withdraw: withdraw, notice: { id: info.notice.id, version: info.notice.version },
      method: 'banner', source: { url: location.origin + location.pathname }, messageId: uuid(),
    };
    // Recorded for whoever this browser is known as; nobody yet (all refused): the choice stays on this device.
    if (!GPC && (aid || previous)) body.anonymousId = aid || previous;
    if (!GPC && uid) body.userId = uid;
    if (body.anonymousId || body.userId) {
      consentSent = post('consent', body).then(function (r) { if (!r.ok) warn('cf.js: POST /v1/consent answered ' + r.status); }, warn);
    }
    choice = { n: info.notice.id, v: info.notice.version, g: grant, l: link, t: new Date().toISOString() };
    put(K_CHOICE, JSON.stringify(choice));
    if (link) put(K_AID, aid);
    else {
      aid = null;
      uid = null;
      del(K_AID);
      del(K_UID);
    }
    emit(d, 'cf:consent', api.consent.get());
    if (link && pendingIdentify) {
      var p = pendingIdentify;
      pendingIdentify = null;
      api.identify(p[0], p[1]);
    }
  }

  function styled(root, css) {
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      root.adoptedStyleSheets = [sheet]; // not subject to the page's CSP style-src
    } catch (e) {
      var s = d.createElement('style');
      if (me.nonce) s.nonce = me.nonce;
      s.textContent = css;
      root.appendChild(s);
    }
  }
  function h(tag, attrs, kids) {
    var e = d.createElement(tag);
    for (var k in attrs) if (attrs[k] != null) e.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) { if (c != null) e.appendChild(typeof c === 'string' ? d.createTextNode(c) : c); });
    return e;
  }
  var FONT = 'font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;';
  var DIALOG_CSS = ':host{all:initial}' +
    '.bd{position:fixed;top:0;right:0;bottom:0;left:0;background:rgba(0,0,0,.55);display:flex;align-items:center;justify-content:center;z-index:2147483647;' + FONT + '}' +
    '.box{background:#fff;width:calc(100% - 2rem);max-width:36rem;max-height:calc(100% - 2rem);overflow:auto;padding:1.5rem;border-radius:.5rem;box-sizing:border-box}' +
    'h2{font-size:1.25rem;margin:0 0 .75rem}p{margin:0 0 .75rem}fieldset{border:0;padding:0;margin:0}legend{font-weight:600;padding:0;margin:0 0 .25rem}' +
    '.p{display:grid;grid-template-columns:auto 1fr;gap:.25rem .75rem;padding:.6rem 0;border-top:1px solid #d0d0d0}' +
    '.p input{width:1.25rem;height:1.25rem;margin:.15rem 0 0}.m{font-size:.875rem;color:#444;margin:0}.p .m{grid-column:2}' +
    '.acts{display:flex;flex-wrap:wrap;gap:.5rem;margin:1rem 0}' +
    'button{flex:1 1 10rem;font:inherit;font-weight:600;padding:.6rem 1rem;border:2px solid #1a1a1a;border-radius:.375rem;background:#fff;color:#1a1a1a;cursor:pointer}' +
    'button:hover{background:#eee}:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}a{color:#0b57d0}';
  var BUTTON_CSS = ':host{all:initial}button{position:fixed;left:.75rem;bottom:.75rem;z-index:2147483646;' + FONT +
    'font-size:14px;padding:.35rem .75rem;border:1px solid #1a1a1a;border-radius:1rem;background:#fff;cursor:pointer}button:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}';

  var open = null;
  function close() {
    if (!open) return;
    var o = open;
    open = null;
    d.removeEventListener('keydown', o.keys, true);
    o.inert.forEach(function (e) { e.inert = false; });
    o.host.remove();
    // Back where the visitor was (WAI-ARIA APG, modal dialog).
    if (o.back && o.back.isConnected && o.back.focus) o.back.focus();
  }
  function render(info) {
    if (open) return;
    var ui = info.ui;
    var back = d.activeElement;
    while (back && back.shadowRoot && back.shadowRoot.activeElement) back = back.shadowRoot.activeElement;
    var host = h('div', { 'data-cf-dialog': '' });
    var root = host.attachShadow({ mode: 'open' });
    styled(root, DIALOG_CSS);
    var mine = choice && choice.n === info.notice.id ? choice.g : null;
    var switches = info.purposes.map(function (p) {
      var id = 'p-' + p.name;
      var box = h('input', { type: 'checkbox', role: 'switch', id: id, name: p.name, 'aria-describedby': id + '-d' });
      // Never ticked in advance for consent (CJEU C-673/17 Planet49); on for legitimate interest, untick to object.
      box.checked = mine ? mine.indexOf(p.name) >= 0 : p.legalBasis === 'legitimate_interest';
      return { p: p, box: box, row: h('div', { class: 'p' }, [box, h('label', { for: id }, [p.description]), h('p', { class: 'm', id: id + '-d' }, [p.legalBasisText + ' ' + p.retentionText])]) };
    });
    function button(action, text) { return h('button', { type: 'button', 'data-cf-action': action }, [text]); }
    var title = h('h2', { id: 't', tabindex: '-1' }, [ui.title]);
    var box = h('div', { class: 'box', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 't', 'aria-describedby': 'n', lang: info.lang }, [
      title,
      h('p', { id: 'n', lang: info.notice.lang }, [info.notice.text]),
      GPC ? h('p', { class: 'm' }, [ui.gpc]) : null,
      h('fieldset', {}, [h('legend', {}, [ui.purposes])].concat(switches.map(function (s) { return s.row; }))),
      // Refusing is as easy as agreeing: the same size, style and place (EDPB Guidelines 03/2022, 05/2020).
      h('div', { class: 'acts' }, [button('reject', ui.rejectAll), button('accept', ui.acceptAll), button('save', ui.save)]),
      h('p', { class: 'm' }, [ui.changeLater]),
      cfg.preferencesUrl ? h('p', { class: 'm' }, [h('a', { href: cfg.preferencesUrl }, [ui.preferences])]) : null,
    ]);
    root.appendChild(h('div', { class: 'bd' }, [box]));
    box.addEventListener('click', function (e) {
      var action = e.target.getAttribute && e.target.getAttribute('data-cf-action');
      if (!action) return;
      var wanted = {};
      switches.forEach(function (s) { wanted[s.p.name] = action === 'accept' || (action === 'save' && s.box.checked); });
      decide(info, wanted);
      close();
    });
    function focusables() { return Array.prototype.slice.call(root.querySelectorAll('input,button,a[href]')); }
    var keys = function (e) {
      if (e.key === 'Escape') {
        e.preventDefault();
        close(); // closed without a choice: nothing is recorded or stored
      } else if (e.key === 'Enter' && root.activeElement && root.activeElement.getAttribute('role') === 'switch') {
        e.preventDefault();
        root.activeElement.click();
      } else if (e.key === 'Tab') {
        var list = focusables();
        var at = root.activeElement;
        var inside = list.indexOf(at);
        if (e.shiftKey && inside <= 0) {
          e.preventDefault();
          list[list.length - 1].focus();
        } else if (!e.shiftKey && (inside === list.length - 1 || (inside < 0 && at !== title))) {
          e.preventDefault();
          list[0].focus();
        }
      }
    };
    d.body.appendChild(host);
    // Everything else is out of reach while the dialog is open (aria-modal alone does not stop a mouse or Tab).
    var inert = Array.prototype.filter.call(d.body.children, function (e) { return e !== host && !e.inert; });
    inert.forEach(function (e) { e.inert = true; });
    d.addEventListener('keydown', keys, true);
    open = { host: host, back: back, keys: keys, inert: inert };
    title.focus();
  }
  function show(auto) {
    return loadNotice(cfg.notice || 'cookie_banner').then(function (info) {
      // On its own, only while there is no choice for this notice yet, or the choice predates its latest version.
      if (auto && choice && !(choice.n === info.notice.id && choice.v < info.notice.version)) return;
      render(info);
    });
  }

  function privacyButton() {
    if (cfg.privacyButton === 'off' || d.querySelector('[data-cf-privacy-settings]')) return;
    var host = h('div', { 'data-cf-privacy': '' });
    var root = host.attachShadow({ mode: 'open' });
    styled(root, BUTTON_CSS);
    var text = LANG === 'pl' ? ['Prywatność', 'Ustawienia prywatności'] : ['Privacy', 'Privacy settings'];
    var b = h('button', { type: 'button', lang: LANG }, [text[1]]);
    b.addEventListener('click', function () { show().catch(warn); });
    root.appendChild(h('aside', { 'aria-label': text[0], lang: LANG }, [b]));
    d.body.appendChild(host);
  }
  d.addEventListener('click', function (e) {
    var t = e.target && e.target.closest ? e.target.closest('[data-cf-privacy-settings]') : null;
    if (!t) return;
    e.preventDefault();
    show().catch(warn);
  });

  // Form capture: the declared fields only, as identify + consent, with the hash of the label's text.
  function sha256(text) {
    if (!(w.crypto && crypto.subtle && w.TextEncoder)) return Promise.resolve('');
    return crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)).then(function (buf) { return hex(new Uint8Array(buf)); });
  }
  function say(form, state, text) {
    form.setAttribute('data-cf-state', state);
    var out = form.querySelector('[data-cf-status]');
    if (out && text) out.textContent = text;
    emit(form, 'cf:form', { state: state });
  }
  async function capture(form) {
    var fd = form.dataset;
    var purposes = (fd.cfPurposes || '').split(/[\s,]+/).filter(Boolean);
    var tick = form.querySelector('input[type=checkbox][data-cf-consent]');
    var label = tick ? tick.labels && tick.labels[0] : form.querySelector('[data-cf-notice-text]');
    var named = (fd.cfNotice || fd.cfForm + ',' + fd.cfForm + '_form').split('@');
    var info = await loadNotice(named[0]);
    if (tick && !tick.checked) return say(form, 'unticked', info.ui.formUnticked);
    if (!purposes.length || !label) throw new Error('cf.js: form "' + fd.cfForm + '" needs data-cf-purposes and a data-cf-consent checkbox with a <label> (or a data-cf-notice-text element)');
    var hash = await sha256(label.textContent.replace(/\s+/g, ' ').trim());
    var n = info.notice;
    var match = n.versions.filter(function (v) { return v.sha256 === hash; })[0];
    var version = Number(named[1]) || (match ? match.version : n.version);
    if (!match || match.version !== version) warn('cf.js: the label of form "' + fd.cfForm + '" is not the text of notice ' + n.id + ' version ' + version + ' (the ledger keeps the hash of both)');
    var traits = {};
    Array.prototype.forEach.call(form.querySelectorAll('[data-cf-field]'), function (el) {
      var name = el.getAttribute('data-cf-field') || el.name;
      if (!name) return;
      if (el.type === 'checkbox') traits[name] = el.checked;
      else if (el.type !== 'radio' || el.checked) { if (String(el.value).trim()) traits[name] = String(el.value).trim(); }
    });
    var doi = info.purposes.some(function (p) { return p.doubleOptIn && purposes.indexOf(p.name) >= 0; });
    // The visitor's own id where they allowed it; otherwise one made for this submission and never kept.
    var ids = { anonymousId: linked() ? aid : uuid() };
    if (linked() && uid) ids.userId = uid;
    var consent = assign({
      writeKey: KEY, grant: purposes, notice: { id: n.id, version: version }, method: doi ? 'double_opt_in' : 'form',
      source: { form: String(fd.cfForm).slice(0, 100) + (hash ? ' label-sha256=' + hash : '') }, messageId: uuid(),
    }, ids);
    if (traits.email) consent.email = traits.email;
    var r = await post('consent', consent);
    if (!r.ok) {
      var j = await r.json().catch(function () { return null; });
      throw new Error('cf.js: POST /v1/consent answered ' + r.status + (j && j.error ? ': ' + j.error.message : ''));
    }
    var r2 = await post('identify', assign({ writeKey: KEY, traits: traits, messageId: uuid(), context: { library: library } }, ids));
    if (!r2.ok) warn('cf.js: POST /v1/identify answered ' + r2.status);
    say(form, doi ? 'pending' : 'done', doi ? info.ui.formPending : info.ui.formDone);
  }
  d.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form || !form.matches || !form.matches('form[data-cf-form]')) return;
    e.preventDefault();
    if (form.getAttribute('data-cf-state') === 'sending') return;
    form.setAttribute('data-cf-state', 'sending');
    capture(form).catch(function (err) {
      warn(err);
      loadNotice('').then(function (info) { say(form, 'error', info.ui.formError); }, function () { say(form, 'error'); });
    });
  });

  var api = {
    version: VERSION,
    page: function (name, props) {
      if (name && typeof name === 'object') { props = name; name = null; }
      var ev = { type: 'page', properties: assign(pageProps(), props) };
      if (name) ev.name = String(name);
      enqueue(ev);
    },
    track: function (event, props) {
      if (event) enqueue({ type: 'track', event: String(event), properties: assign({}, props) });
    },
    identify: function (userId, traits) {
      if (userId && typeof userId === 'object') { traits = userId; userId = null; }
      // Sent only once the visitor allows linking; until then kept for this page alone.
      if (!linked()) { pendingIdentify = [userId, traits]; return; }
      if (userId != null) { uid = String(userId); put(K_UID, uid); }
      enqueue({ type: 'identify', traits: assign({}, traits) });
    },
    flush: flush,
    consent: {
      show: function () { return show(false); },
      hide: close,
      get: function () { return choice ? { notice: { id: choice.n, version: choice.v }, granted: choice.g.slice(), linked: linked(), at: choice.t } : null; },
    },
  };
  w.cf = api;

  function start() {
    privacyButton();
    if (cfg.page !== 'off') api.page();
    if (Array.isArray(before)) before.forEach(function (call) { if (call && typeof api[call[0]] === 'function') api[call[0]].apply(api, call.slice(1)); });
    if (cfg.consent === 'auto' && !GPC) show(true).catch(warn);
  }
  if (d.readyState === 'loading') d.addEventListener('DOMContentLoaded', start);
  else start();
})(window, document);
