// Package testport hands tests loopback ports for the processes they start.
//
// A port taken from the kernel with Listen(":0") and closed again is an
// ephemeral port: the kernel may give it to the next Listen(":0") or to an
// outgoing connection before the child process binds it, which is how two
// binaries of one test once got the same port. Ports from this package come
// from below the kernel's ephemeral range (so no kernel choice competes for
// them), are checked free for TCP and UDP (memberlist needs both), and are
// never handed out twice by one test binary.
package testport

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// The range ports are drawn from: below Linux's default ephemeral range
// (32768–60999) and above the well-known and most registered ports.
const (
	low  = 10000
	high = 32768
)

// handedOut is process-wide on purpose: the ports it guards are a resource
// of the whole test binary, shared by every test in it.
var (
	mu        sync.Mutex
	handedOut = map[int]bool{}
)

// Addr returns "127.0.0.1:<port>" with a port free for TCP and UDP.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Range(t, 1)))
}

// Port returns a port free for TCP and UDP on 127.0.0.1.
func Port(t testing.TB) int {
	t.Helper()
	return Range(t, 1)
}

// Range returns the first of n consecutive ports that are all free for TCP
// and UDP on 127.0.0.1.
func Range(t testing.TB, n int) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		base := low + rand.IntN(high-low-n)
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = !handedOut[p] && free(p)
		}
		if ok {
			for p := base; p < base+n; p++ {
				handedOut[p] = true
			}
			return base
		}
	}
	t.Fatalf("testport: no %d consecutive free ports in [%d, %d)", n, low, high)
	return 0
}

func free(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	return pc.Close() == nil
}
