package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's structures (include/uapi/linux/io_uring.h).
type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

type sqe struct {
	opcode, flags     uint8
	ioprio            uint16
	fd                int32
	off, addr         uint64
	len, opFlags      uint32
	userData          uint64
	bufIndex, persona uint16
	spliceFdIn        int32
	addr3, pad        uint64
}

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// Operations (enum io_uring_op).
const (
	opTimeout     = 11
	opAccept      = 13
	opAsyncCancel = 14
	opLinkTimeout = 15
	opConnect     = 16
	opRead        = 22
	opSend        = 26
	opRecv        = 27
)

const (
	sqeLink        = 1 << 2  // IOSQE_IO_LINK
	sqeSkipSuccess = 1 << 6  // IOSQE_CQE_SKIP_SUCCESS
	setupSingle    = 1 << 12 // IORING_SETUP_SINGLE_ISSUER
	setupDeferTask = 1 << 13 // IORING_SETUP_DEFER_TASKRUN
	featSingleMmap = 1 << 0  // IORING_FEAT_SINGLE_MMAP
	enterGetEvents = 1 << 0  // IORING_ENTER_GETEVENTS

	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

// Ring is an io_uring instance. Its methods are for one goroutine locked
// to its OS thread.
type Ring struct {
	fd      int
	mem     [][]byte // the mappings, unmapped by Close
	sqHead  *uint32
	sqTail  *uint32
	sqMask  uint32
	sqArray []uint32
	sqes    []sqe
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    []cqe
	tail    uint32 // the next submission's index
	pending uint32 // prepared, not yet submitted
	done    uint64 // submitted, ever
}

// New sets up a ring for entries operations at a time (rounded up to a
// power of two by the kernel; twice as many completions).
func New(entries uint32) (*Ring, error) {
	var p params
	p.flags = setupSingle | setupDeferTask
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, setupError(errno)
	}
	r := &Ring{fd: int(fd)}
	if err := r.mmap(&p); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// setupError says why io_uring_setup failed, in the terms of the setting
// that decides it.
func setupError(errno syscall.Errno) error {
	switch errno {
	case unix.ENOSYS:
		return fmt.Errorf("io_uring: this kernel has none (%w)", errno)
	case unix.EPERM:
		return fmt.Errorf("io_uring: not allowed here: the sysctl kernel.io_uring_disabled, or a seccomp profile, refuses it (%w)", errno)
	case unix.EINVAL:
		return fmt.Errorf("io_uring: this kernel is older than 6.1 (no IORING_SETUP_DEFER_TASKRUN) (%w)", errno)
	case unix.ENOMEM, unix.EMFILE, unix.ENFILE:
		return fmt.Errorf("io_uring: no room for a ring (%w)", errno)
	}
	return fmt.Errorf("io_uring_setup: %w", errno)
}

func (r *Ring) mmap(p *params) error {
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	single := p.features&featSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	m := func(off int64, size int) ([]byte, error) {
		b, err := unix.Mmap(r.fd, off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return nil, fmt.Errorf("io_uring: map the ring: %w", err)
		}
		r.mem = append(r.mem, b)
		return b, nil
	}
	sq, err := m(offSQRing, sqSize)
	if err != nil {
		return err
	}
	cq := sq
	if !single {
		if cq, err = m(offCQRing, cqSize); err != nil {
			return err
		}
	}
	entries, err := m(offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})))
	if err != nil {
		return err
	}
	u32 := func(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }
	r.sqHead, r.sqTail, r.sqMask = u32(sq, p.sqOff.head), u32(sq, p.sqOff.tail), *u32(sq, p.sqOff.ringMask)
	r.sqArray = unsafe.Slice(u32(sq, p.sqOff.array), p.sqEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&entries[0])), p.sqEntries)
	r.cqHead, r.cqTail, r.cqMask = u32(cq, p.cqOff.head), u32(cq, p.cqOff.tail), *u32(cq, p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&cq[p.cqOff.cqes])), p.cqEntries)
	r.tail = atomic.LoadUint32(r.sqTail)
	return nil
}

// Close unmaps the ring and closes it; the kernel cancels what is pending.
func (r *Ring) Close() error {
	for _, b := range r.mem {
		unix.Munmap(b)
	}
	r.mem = nil
	return unix.Close(r.fd)
}

// Room is how many operations can be prepared before a Submit.
func (r *Ring) Room() int {
	return len(r.sqes) - int(r.tail-atomic.LoadUint32(r.sqHead))
}

// Reserve makes room for n operations, submitting what is prepared when
// there is less: a chain of linked operations is prepared whole, never
// split between two submissions.
func (r *Ring) Reserve(n int) error {
	if r.Room() >= n {
		return nil
	}
	if err := r.Submit(0); err != nil {
		return err
	}
	if r.Room() < n {
		return ErrFull
	}
	return nil
}

// ErrFull is a prepare's when the submission queue is full: Submit, then
// prepare again.
var ErrFull = errors.New("io_uring: the submission queue is full")

// prep prepares an operation; link starts the next one prepared when this
// one ends, and ends it (canceled) when this one fails.
func (r *Ring) prep(op uint8, link bool, fd int, addr unsafe.Pointer, n uint32, userData uint64) (*sqe, error) {
	if r.Room() == 0 {
		return nil, ErrFull
	}
	i := r.tail & r.sqMask
	e := &r.sqes[i]
	*e = sqe{opcode: op, fd: int32(fd), addr: uint64(uintptr(addr)), len: n, userData: userData}
	if link {
		e.flags = sqeLink
	}
	r.sqArray[i] = i
	r.tail++
	r.pending++
	atomic.StoreUint32(r.sqTail, r.tail)
	return e, nil
}

func bufAddr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// Recv receives into buf from the socket fd; its result is the length
// received (0: the peer closed) or -errno.
func (r *Ring) Recv(fd int, buf []byte, userData uint64, link bool) error {
	_, err := r.prep(opRecv, link, fd, bufAddr(buf), uint32(len(buf)), userData)
	return err
}

// Send sends buf on the socket fd (MSG_NOSIGNAL: a closed peer is -EPIPE,
// not a signal); its result is the length sent, which may be short.
func (r *Ring) Send(fd int, buf []byte, userData uint64, link bool) error {
	e, err := r.prep(opSend, link, fd, bufAddr(buf), uint32(len(buf)), userData)
	if err == nil {
		e.opFlags = unix.MSG_NOSIGNAL
	}
	return err
}

// SendNow sends all of buf on the socket fd while the Submit that submits
// it runs, or says how much it could: success posts no completion, and buf
// is free once that Submit returns; a socket without room for all of buf
// completes at once (MSG_DONTWAIT: never later) with the length it took,
// or -EAGAIN when it took none. The completion, if any, is in the queue
// when that Submit returns. It links to nothing: the kernel ends a chain
// whose head fails with IOSQE_CQE_SKIP_SUCCESS without a completion for
// any of it.
func (r *Ring) SendNow(fd int, buf []byte, userData uint64) error {
	e, err := r.prep(opSend, false, fd, bufAddr(buf), uint32(len(buf)), userData)
	if err == nil {
		e.opFlags = unix.MSG_NOSIGNAL | unix.MSG_WAITALL | unix.MSG_DONTWAIT
		e.flags |= sqeSkipSuccess
	}
	return err
}

// Read reads into buf from fd (an eventfd, say).
func (r *Ring) Read(fd int, buf []byte, userData uint64) error {
	e, err := r.prep(opRead, false, fd, bufAddr(buf), uint32(len(buf)), userData)
	if err == nil {
		e.off = ^uint64(0) // the file's own position
	}
	return err
}

// Accept accepts a connection on the listening socket fd, close-on-exec;
// its result is the new socket.
func (r *Ring) Accept(fd int, userData uint64) error {
	e, err := r.prep(opAccept, false, fd, nil, 0, userData)
	if err == nil {
		e.opFlags = unix.SOCK_CLOEXEC
	}
	return err
}

// Connect connects the socket fd to the address sa of length n; its
// result is 0 or -errno. sa must stay unchanged until it completes.
func (r *Ring) Connect(fd int, sa *unix.RawSockaddrAny, n uint32, userData uint64, link bool) error {
	e, err := r.prep(opConnect, link, fd, unsafe.Pointer(sa), 0, userData)
	if err == nil {
		e.off = uint64(n)
	}
	return err
}

// LinkTimeout ends the operation prepared just before it (with link set)
// when ts passes first: that one completes with -ECANCELED, this one with
// -ETIME (or -ECANCELED when the operation ended first). ts must stay
// unchanged until this completes.
func (r *Ring) LinkTimeout(ts *unix.Timespec, userData uint64) error {
	_, err := r.prep(opLinkTimeout, false, -1, unsafe.Pointer(ts), 1, userData)
	return err
}

// Timeout completes with -ETIME once ts (relative) has passed.
func (r *Ring) Timeout(ts *unix.Timespec, userData uint64) error {
	_, err := r.prep(opTimeout, false, -1, unsafe.Pointer(ts), 1, userData)
	return err
}

// Cancel cancels the pending operation whose user data is target: it
// completes with -ECANCELED, and this with 0 (-ENOENT: none was pending;
// -EALREADY: it was under way, and ends by itself).
func (r *Ring) Cancel(target, userData uint64) error {
	e, err := r.prep(opAsyncCancel, false, -1, nil, 0, userData)
	if err == nil {
		e.addr = target
	}
	return err
}

// Submit submits the prepared operations and waits until wait of them (or
// of those before) have completed. A signal ends the wait early.
func (r *Ring) Submit(wait uint32) error {
	flags := uintptr(0)
	if wait > 0 {
		flags = enterGetEvents
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.pending), uintptr(wait), flags, 0, 0)
		switch errno {
		case 0:
			r.pending -= uint32(n)
			r.done += uint64(n)
			return nil
		case unix.EINTR:
			if r.pending == 0 {
				return nil
			}
			continue
		case unix.EBUSY, unix.EAGAIN:
			// Completions are waiting to be reaped (their queue
			// overflowed): the caller reaps them, then submits again.
			return nil
		default:
			return fmt.Errorf("io_uring_enter: %w", errno)
		}
	}
}

// Prepared is how many operations were ever prepared: an operation's
// number is this count right after it is prepared.
func (r *Ring) Prepared() uint64 { return r.done + uint64(r.pending) }

// Submitted is how many operations were ever submitted (in the order they
// were prepared: the operations numbered up to it). A Submit can leave
// some while completions wait to be reaped.
func (r *Ring) Submitted() uint64 { return r.done }

// Completion is a completed operation: its user data, and its result (as
// the system call's: a count, a descriptor, or -errno).
type Completion struct {
	UserData uint64
	Res      int32
}

// Reap appends the completions there are to into and frees their slots.
func (r *Ring) Reap(into []Completion) []Completion {
	head := *r.cqHead
	for tail := atomic.LoadUint32(r.cqTail); head != tail; head++ {
		c := &r.cqes[head&r.cqMask]
		into = append(into, Completion{UserData: c.userData, Res: c.res})
	}
	atomic.StoreUint32(r.cqHead, head)
	return into
}
