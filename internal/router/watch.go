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

// watchDelay is how long a response is awaited before the client is
// watched: most come sooner, and go without a watch.
const watchDelay = 20 * time.Millisecond

// startWatch watches the client at once while the request waits for room
// on an instance: when it goes away, onGone is called. No watch starts
// when a byte of the client's is buffered.
func (cc *coreConn) startWatch(onGone func()) {
	cc.gone = false
	if cc.br.Buffered() > 0 || cc.hasByte {
		return
	}
	cc.wmu.Lock()
	cc.onGone = onGone
	cc.wmu.Unlock()
	cc.running = true
	go cc.watch()
}

// stopWatch ends startWatch's watch and records whether the client went
// away meanwhile.
func (cc *coreConn) stopWatch() {
	if cc.running {
		cc.running = false
		cc.interruptWatch()
	}
	cc.wmu.Lock()
	cc.onGone = nil
	cc.wmu.Unlock()
}

// beginAwait watches the client, once the request is watchDelay old,
// while the response is awaited on uc: when it goes away, uc is cut
// short. The connection's timer is set when it is not already: it is not
// set and stopped per request, but fires at most once per watchDelay
// while requests come, and tick sets it again while one is awaited.
func (cc *coreConn) beginAwait(uc *upConn) {
	cc.gone = false
	if cc.br.Buffered() > 0 || cc.hasByte {
		return
	}
	cc.wmu.Lock()
	cc.awaiting, cc.cut = true, uc
	if !cc.armed {
		cc.armed = true
		cc.timer.Reset(watchDelay)
	}
	cc.wmu.Unlock()
}

// endAwait ends beginAwait's wait, and the watch if it started, and
// records whether the client went away meanwhile.
func (cc *coreConn) endAwait() {
	cc.wmu.Lock()
	watching := cc.watching
	cc.awaiting, cc.watching = false, false
	cc.wmu.Unlock()
	if watching {
		cc.interruptWatch()
	}
	cc.wmu.Lock()
	cc.cut = nil
	cc.wmu.Unlock()
}

// tick is the timer's: it starts the watch of a response awaited for
// watchDelay, or waits the rest of it.
func (cc *coreConn) tick() {
	cc.wmu.Lock()
	if !cc.awaiting {
		cc.armed = false
		cc.wmu.Unlock()
		return
	}
	if rest := watchDelay - time.Since(cc.start); rest > 0 {
		cc.timer.Reset(rest)
		cc.wmu.Unlock()
		return
	}
	cc.armed, cc.watching = false, true
	cc.wmu.Unlock()
	cc.watch()
}

// interruptWatch ends a watch's read and waits for the watch to end.
func (cc *coreConn) interruptWatch() {
	cc.c.SetReadDeadline(aLongTimeAgo)
	<-cc.wdone
	cc.setReadDeadline(time.Time{})
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
			cc.cut.cutShort()
		}
	}
	cc.wmu.Unlock()
	cc.wdone <- struct{}{}
}
