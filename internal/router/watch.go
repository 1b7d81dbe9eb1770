package router

import (
	"errors"
	"os"
	"time"
)

// The core reads a client connection only on the request's own goroutine,
// so a client that goes away while its request waits (for room on an
// instance, or for the instance's response) would go unnoticed until the
// response is written. While a request waits longer than a moment, a
// watch reads the client connection for one byte, as net/http's server
// does: the end of the connection ends the wait (the room is given back at
// once, and the autoscaler no longer counts the request); a byte (the next
// pipelined request) is kept and read first later.

// aLongTimeAgo is a deadline that has passed: it ends a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// startWatch watches the client while the request waits: when it goes
// away, onGone is called and uc (if any) is cut. The watch starts after
// delay (0: at once), and only when no byte of the client's is buffered.
func (cc *coreConn) startWatch(onGone func(), uc *upConn, delay time.Duration) {
	cc.gone = false
	if cc.br.Buffered() > 0 || cc.hasByte {
		return
	}
	cc.wmu.Lock()
	cc.onGone, cc.cut = onGone, uc
	cc.wmu.Unlock()
	if delay == 0 {
		cc.running = true
		go cc.watch()
		return
	}
	cc.armed = true
	cc.timer.Reset(delay)
}

// stopWatch ends the watch, if any, and records whether the client went
// away meanwhile.
func (cc *coreConn) stopWatch() {
	started := cc.running
	if cc.armed {
		started = started || !cc.timer.Stop()
	}
	cc.running, cc.armed = false, false
	if started {
		cc.c.SetReadDeadline(aLongTimeAgo)
		<-cc.wdone
		cc.setReadDeadline(time.Time{})
	}
	cc.wmu.Lock()
	cc.onGone, cc.cut = nil, nil
	cc.wmu.Unlock()
}

// watch reads one byte of the client's.
func (cc *coreConn) watch() {
	n, err := cc.c.Read(cc.pending[:])
	cc.wmu.Lock()
	if n == 1 {
		cc.hasByte = true
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		cc.gone = true
		if cc.onGone != nil {
			cc.onGone()
		}
		if cc.cut != nil {
			cc.cut.SetDeadline(aLongTimeAgo)
		}
	}
	cc.wmu.Unlock()
	cc.wdone <- struct{}{}
}
