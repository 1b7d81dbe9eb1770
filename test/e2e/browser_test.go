package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/coligo/coligo/internal/itest"
)

// browser is a headless Debian Chromium driven over the DevTools protocol;
// each tab is a browser context of its own (its own cookies and storage).
type browser struct {
	t     *testing.T
	alloc context.Context
	root  context.Context
	axe   string // axe-core's source
	shots string // where screenshots go
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe, axePath := os.Getenv("COLIGO_TEST_CHROMIUM"), os.Getenv("COLIGO_TEST_AXE")
	if exe == "" || axePath == "" {
		itest.Missing(t, "COLIGO_TEST_CHROMIUM or COLIGO_TEST_AXE is not set: make test installs Debian's chromium and axe-core (scripts/axe-fetch.sh)")
	}
	axe, err := os.ReadFile(axePath)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("user-data-dir", t.TempDir()), chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	if err := chromedp.Do(root); err != nil {
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancelRoot(); cancelAlloc() })
	return &browser{t: t, alloc: alloc, root: root, axe: string(axe), shots: t.ArtifactDir()}
}

// tab is one page in a browser context of its own.
type tab struct {
	b   *browser
	ctx context.Context
	mu  sync.Mutex
	log []string // the page's exceptions, console errors and failed loads
}

func (b *browser) tab() *tab {
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	tb := &tab{b: b, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		b.t.Fatal(err)
	}
	note := func(s string) {
		tb.mu.Lock()
		tb.log = append(tb.log, time.Now().Format("15:04:05.000 ")+s)
		tb.mu.Unlock()
	}
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ExceptionThrown) {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			note(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, desc))
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ConsoleAPICalled) {
			if err != nil {
				return
			}
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			note(fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(ctx, network.LoadingFailed) {
			if err != nil {
				return
			}
			note(fmt.Sprintf("load failed: %s %s (%s)", ev.Type, ev.ErrorText, ev.BlockedReason))
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(ctx, network.RequestWillBeSent) {
			if err != nil {
				return
			}
			note("request: " + ev.Request.Method + " " + ev.Request.URL)
		}
	}()
	return tb
}

// block makes the page's loads of URLs matching pattern (URLPattern
// syntax) fail, as a network failure would; "" lifts it.
func (tb *tab) block(pattern string) {
	tb.b.t.Helper()
	var ps []*network.BlockPattern
	if pattern != "" {
		ps = append(ps, &network.BlockPattern{URLPattern: pattern, Block: true})
	}
	tb.run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: ps})
		return err
	}))
}

// events is what the page reported: exceptions, console messages,
// requests and failed loads.
func (tb *tab) events() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return strings.Join(tb.log, "\n")
}

// login opens the console of the server at base in a new tab and logs in
// with token.
func (b *browser) login(base, token string) *tab {
	b.t.Helper()
	tb := b.tab()
	tb.open(base + "/console/")
	tb.waitText("Log in to coligo", 10*time.Second)
	tb.fill("Log in to coligo", "Token", token)
	tb.click("Log in")
	tb.waitFor("the projects page", `location.hash === '#/projects' && document.querySelector('main h1') && document.querySelector('main h1').textContent === 'Projects'`, 10*time.Second)
	return tb
}

// run runs actions with a deadline.
func (tb *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.b.t.Fatalf("browser: %v (page: %s)\nthe page's events:\n%s", err, tb.text(), tb.events())
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into out.
func eval[T any](tb *tab, expr string) T {
	tb.b.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.b.t.Fatalf("browser: evaluate: %v (page: %s)", err, tb.text())
	}
	return v
}

// text is what the page says.
func (tb *tab) text() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

// open navigates to url. A navigation the browser aborts because the
// machine's network changed (a container's interface came or went:
// ERR_NETWORK_CHANGED) is made again.
func (tb *tab) open(url string) {
	tb.b.t.Helper()
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
		err := chromedp.Do(ctx, chromedp.Navigate(url))
		cancel()
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") || try == 3 {
			tb.b.t.Fatalf("browser: open %s: %v\nthe page's events:\n%s", url, err, tb.events())
		}
	}
}

// waitFor polls a JavaScript condition until it is true.
func (tb *tab) waitFor(what, cond string, within time.Duration) {
	tb.b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+cond+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.b.t.Fatalf("browser: %s: not within %s (%v); the page says:\n%s\nthe page's events:\n%s", what, within, err, tb.text(), tb.events())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitText waits until the main area shows s.
func (tb *tab) waitText(s string, within time.Duration) {
	tb.b.t.Helper()
	tb.waitFor("the page shows "+s, `document.querySelector('main') && document.querySelector('main').innerText.includes(`+js(s)+`)`, within)
}

func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// control finds the form control labelled label (in the form or dialog
// whose heading is form; anywhere when form is "") and returns its id.
func (tb *tab) control(form, label string) string {
	tb.b.t.Helper()
	id := eval[string](tb, fmt.Sprintf(`(() => {
		const scopes = %[1]s ? [...document.querySelectorAll('form, dialog')].filter((f) => [...f.querySelectorAll('h1,h2')].some((h) => h.textContent === %[1]s)) : [document];
		for (const s of scopes) for (const l of s.querySelectorAll('label')) if (l.textContent === %[2]s) return l.htmlFor;
		return '';
	})()`, js(form), js(label)))
	if id == "" {
		tb.b.t.Fatalf("browser: no control labelled %q in %q; the page says:\n%s", label, form, tb.text())
	}
	return id
}

// fill types value into the control labelled label, as a user would.
func (tb *tab) fill(form, label, value string) {
	tb.b.t.Helper()
	id := tb.control(form, label)
	eval[bool](tb, `(document.getElementById(`+js(id)+`).value = '', true)`)
	tb.run(typeInto(id, value))
}

// fillForm fills the form whose heading is form: pairs of a label and a
// value.
func (tb *tab) fillForm(form string, pairs ...string) {
	tb.b.t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		tb.fill(form, pairs[i], pairs[i+1])
	}
}

// typeInto types value into the element of id, key by key.
func typeInto(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS("#"+id), value)
}

// pick chooses value in the select labelled label.
func (tb *tab) pick(form, label, value string) {
	tb.b.t.Helper()
	id := tb.control(form, label)
	tb.run(chromedp.SetValue(chromedp.CSS("#"+id), value))
}

// click clicks the button, link or label (of a checkbox) whose text (or
// aria-label) is name.
func (tb *tab) click(name string) {
	tb.b.t.Helper()
	tb.waitFor("a control named "+name, clickable(name), 15*time.Second)
	eval[bool](tb, `(() => { const el = `+clickable(name)+`; el.focus(); el.click(); return true; })()`)
}

func clickable(name string) string {
	return `[...document.querySelectorAll('button, a, label')].reverse().find((e) => !e.disabled && (e.getAttribute('aria-label') === ` + js(name) + ` || e.textContent.trim() === ` + js(name) + `))`
}

// has reports whether a button or link named name is on the page.
func (tb *tab) has(name string) bool {
	return eval[bool](tb, `!!`+clickable(name))
}

// check runs axe-core on the page and fails the test on any serious or
// critical violation; it also takes the page's screenshots at 1280 and
// 390 pixels wide.
func (tb *tab) check(page string) {
	tb.b.t.Helper()
	if !eval[bool](tb, `typeof axe !== 'undefined'`) {
		eval[bool](tb, tb.b.axe+"\n;true")
	}
	type violation struct {
		ID, Impact, Help string
		Nodes            []struct{ HTML string }
	}
	violations := eval[[]violation](tb, `axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }).then((r) => r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({ID: v.id, Impact: v.impact, Help: v.help, Nodes: v.nodes.slice(0, 3).map((n) => ({HTML: n.html}))})))`)
	for _, v := range violations {
		var nodes []string
		for _, n := range v.Nodes {
			nodes = append(nodes, n.HTML)
		}
		tb.b.t.Errorf("accessibility (axe) on %s: %s %s: %s at %s", page, v.Impact, v.ID, v.Help, strings.Join(nodes, " | "))
	}
	for _, w := range []struct {
		name string
		w, h int64
	}{{"1280", 1280, 900}, {"390", 390, 844}} {
		tb.run(chromedp.EmulateViewport(w.w, w.h), chromedp.Sleep(150*time.Millisecond))
		ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			tb.b.t.Fatalf("browser: screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(tb.b.shots, page+"-"+w.name+".png"), png, 0o644); err != nil {
			tb.b.t.Fatal(err)
		}
		if w.w == 390 {
			if eval[bool](tb, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
				tb.b.t.Errorf("%s: the page is wider than a 390 px screen (it scrolls sideways)", page)
			}
		}
	}
	tb.run(chromedp.EmulateViewport(1280, 900))
}
