// Command console measures the web console in Debian's headless Chromium:
// the time from navigating to the apps page of a project with 40 apps to
// the frame that first shows all 40 rows (its first meaningful paint),
// against the time the same browser takes to load the same list as the
// API's raw JSON (the baseline: what any page showing the list must wait
// for), best and median of a number of fresh loads each; and the size of
// the assets embedded in the binary, raw and gzipped.
//
//	go run ./bench/console -bin bin/coligo
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/bench/internal/benchkit"
	"github.com/coligo/coligo/internal/console"
)

func main() {
	bin := flag.String("bin", "bin/coligo", "coligo binary")
	chrome := flag.String("chromium", "/usr/bin/chromium", "Chromium binary")
	apps := flag.Int("apps", 40, "apps in the project")
	loads := flag.Int("loads", 15, "page loads of each kind")
	timings := flag.Bool("timings", false, "print when each resource of the last console load began and ended (ms)")
	flag.Parse()
	if err := run(*bin, *chrome, *apps, *loads, *timings); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// painted records, in the page, when the apps table first has want rows:
// at the next animation frame after the DOM change, which is when the
// browser paints it.
const painted = `(() => {
  const want = %d;
  new MutationObserver((_, obs) => {
    if (document.querySelectorAll('main tbody tr').length >= want) {
      obs.disconnect();
      requestAnimationFrame(() => { window.__painted = performance.now(); });
    }
  }).observe(document, { childList: true, subtree: true });
})();`

func run(bin, chrome string, n, loads int, timings bool) error {
	s, err := benchkit.Start(bin, "--containerd-address", "", "--max-apps", "0")
	if err != nil {
		return err
	}
	defer s.Stop()
	ctx := context.Background()
	c := s.Client()
	p, err := benchkit.ActiveProject(ctx, c, "bench")
	if err != nil {
		return err
	}
	for i := range n {
		if _, err := c.CreateApp(ctx, p.ID, api.AppPrototype{Name: fmt.Sprintf("app-%02d", i),
			AppSpec: api.AppSpec{ImageReference: "registry.example/team/app:1"}}); err != nil {
			return err
		}
	}

	dir, err := os.MkdirTemp("", "coligo-bench-chromium")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 900))
	alloc, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(s.URL+"/console/")); err != nil {
		return err
	}
	// Log in once; every load after it is a fresh page with the session.
	login := fmt.Sprintf(`fetch('/console/session', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({token: %q})}).then((r) => r.status)`, s.Token)
	if code, err := chromedp.Run(bctx, chromedp.Evaluate[int](login, chromedp.EvalAwaitPromise)); err != nil || code != 200 {
		return fmt.Errorf("login: %d %v", code, err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: fmt.Sprintf(painted, n)})
		return err
	})); err != nil {
		return err
	}
	disableCache := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
		return err
	})
	if err := chromedp.Do(bctx, disableCache); err != nil {
		return err
	}
	measure := func(url, done string) (time.Duration, error) {
		tctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url)); err != nil {
			return 0, err
		}
		for {
			ms, err := chromedp.Run(tctx, chromedp.Evaluate[float64](done))
			if err == nil && ms > 0 {
				return time.Duration(ms * float64(time.Millisecond)), nil
			}
			if tctx.Err() != nil {
				return 0, fmt.Errorf("%s: not done: %v", url, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	apps := s.URL + "/console/#/projects/" + p.ID + "/apps"
	raw := s.URL + "/v2/projects/" + p.ID + "/apps?limit=100"
	var base, con []time.Duration
	for i := range loads + 2 {
		b, err := measure(raw, `document.readyState === 'complete' && document.body.innerText.includes('"app-`+fmt.Sprintf("%02d", n-1)+`"') ? performance.now() : 0`)
		if err != nil {
			return err
		}
		d, err := measure(apps, `window.__painted || 0`)
		if err != nil {
			return err
		}
		if i >= 2 { // the first loads warm the server and the browser
			base, con = append(base, b), append(con, d)
		}
	}
	if timings {
		v, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`JSON.stringify(performance.getEntriesByType('resource').map((e) => [e.name.replace(/^.*\/\/[^/]+/, ''), Math.round(e.startTime), Math.round(e.responseEnd)]).concat([['dcl', 0, Math.round(performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd)], ['painted', 0, Math.round(window.__painted)]]))`))
		fmt.Println(v)
	}
	slices.Sort(base)
	slices.Sort(con)
	med := func(d []time.Duration) time.Duration { return d[len(d)/2] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Printf("| page | best | median | median ÷ baseline |\n|---|---|---|---|\n")
	fmt.Printf("| the list as raw JSON, %d apps (baseline) | %s | %s | 1.00 |\n", n, ms(base[0]), ms(med(base)))
	fmt.Printf("| console apps page, %d rows painted | %s | %s | %.2f |\n", n, ms(con[0]), ms(med(con)), float64(med(con))/float64(med(base)))

	total, zipped, files := 0, 0, 0
	sub := console.Assets()
	fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		if err != nil {
			return err
		}
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		w.Write(b)
		w.Close()
		total, zipped, files = total+len(b), zipped+z.Len(), files+1
		return nil
	})
	fmt.Printf("\nembedded assets: %d files, %.1f KiB (%.1f KiB gzipped)\n", files, float64(total)/1024, float64(zipped)/1024)
	return nil
}
