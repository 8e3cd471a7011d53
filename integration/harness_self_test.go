package integration

import (
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestWaitActiveOutlastsEarlyFailures: a distributor that is still
// starting fails the first polls of its ring (on a loaded machine its
// HTTP port opens after the ingesters joined its gossip port). waitActive
// must take such a failure as one more attempt, not as the test's failure,
// and must not return before the distributor routes to the ingesters (its
// placement is rebuilt after its member list changes). The stand-in
// distributor drops the connection of its first three requests without an
// answer, then lists an ACTIVE ingester without partitions twice, then
// with all of them.
func TestWaitActiveOutlastsEarlyFailures(t *testing.T) {
	var requests atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /promgov/api/v1/status/ring", func(w http.ResponseWriter, _ *http.Request) {
		n := requests.Add(1)
		if n <= 3 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close() // the client sees the connection fail
			}
			return
		}
		partitions := 0
		if n > 5 {
			partitions = 271
		}
		fmt.Fprintf(w, `{"status":"success","data":{"partition_count":271,"members":[`+
			`{"name":"distributor","role":"distributor","state":"ACTIVE","partitions":0},`+
			`{"name":"ingester-1","role":"ingester","state":"ACTIVE","partitions":%d}]}}`, partitions)
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Ready.") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	// The process behind the node only has to be running.
	standIn := startProcess(t, "distributor-stand-in", "sleep", "600")
	c := &cluster{t: t, distributor: &node{name: "distributor", webAddr: ln.Addr().String(), proc: standIn}}
	c.waitActive(1)
	if n := requests.Load(); n <= 5 {
		t.Fatalf("waitActive returned after %d ring requests, before the stand-in placed partitions on the ingester", n)
	}
}
