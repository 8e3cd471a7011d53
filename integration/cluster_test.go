package integration

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// node is a running promgov binary.
type node struct {
	name       string
	proc       *process
	webAddr    string
	gossipAddr string
	grpcAddr   string
	walDir     string
}

func (n *node) url(path string) string { return "http://" + n.webAddr + path }

// cluster is a distributor, some ingesters and a backend.
type cluster struct {
	t               *testing.T
	backend         *backend
	backendProtocol int
	distributor     *node
	ingesters       []*node
	seq             int
}

// newCluster starts a backend, one distributor and n ingesters and waits
// until the distributor sees all n ingesters ACTIVE.
func newCluster(t *testing.T, n, backendProtocol int) *cluster {
	t.Helper()
	requireIntegration(t)
	return newClusterOn(t, n, backendProtocol, startBackend(t))
}

// newClusterOn is newCluster forwarding to a backend already started (a
// Prometheus from startBackend or a VictoriaMetrics from
// startVictoriaMetrics).
func newClusterOn(t *testing.T, n, backendProtocol int, be *backend) *cluster {
	t.Helper()
	c := &cluster{t: t, backend: be, backendProtocol: backendProtocol}
	c.distributor = c.startDistributor()
	for range n {
		c.addIngester()
	}
	c.waitActive(n)
	return c
}

func (c *cluster) startDistributor() *node {
	n := &node{name: "distributor", webAddr: freeAddr(c.t), gossipAddr: freeAddr(c.t)}
	n.proc = startProcess(c.t, n.name, filepath.Join(binDir, "distributor"),
		"--web.listen-address="+n.webAddr,
		"--memberlist.bind-address="+n.gossipAddr,
		"--memberlist.node-name="+n.name,
		"--distributor.push-timeout=5s",
		"--log.level=debug",
	)
	return n
}

// addIngester starts one more ingester that joins through the distributor
// and waits until it is ready (ACTIVE in its own view of the ring).
func (c *cluster) addIngester() *node {
	c.seq++
	n := &node{
		name:       fmt.Sprintf("ingester-%d", c.seq),
		webAddr:    freeAddr(c.t),
		gossipAddr: freeAddr(c.t),
		grpcAddr:   freeAddr(c.t),
		walDir:     filepath.Join(c.t.TempDir(), "wal"),
	}
	c.startIngester(n)
	c.ingesters = append(c.ingesters, n)
	return n
}

func (c *cluster) startIngester(n *node) {
	n.proc = startProcess(c.t, n.name, filepath.Join(binDir, "ingester"),
		"--web.listen-address="+n.webAddr,
		"--grpc.listen-address="+n.grpcAddr,
		"--memberlist.bind-address="+n.gossipAddr,
		"--memberlist.join="+c.distributor.gossipAddr,
		"--memberlist.node-name="+n.name,
		"--wal.dir="+n.walDir,
		"--backend.url="+c.backend.writeURL(),
		"--backend.protocol="+strconv.Itoa(c.backendProtocol),
		"--forward.batch-send-deadline=200ms",
		"--ingester.leave-drain-period=2s",
		"--log.level=debug",
	)
	waitReady(c.t, n.proc, n.url("/-/ready"))
}

// ringMember is one entry of GET /promgov/api/v1/status/ring.
type ringMember struct {
	Name        string  `json:"name"`
	Role        string  `json:"role"`
	State       string  `json:"state"`
	GRPCAddress string  `json:"grpc_address"`
	Partitions  int     `json:"partitions"`
	Share       float64 `json:"share"`
}

// ring returns the members n sees.
func (c *cluster) ring(t T, n *node) []ringMember {
	t.Helper()
	members, _ := c.ringStatus(t, n)
	return members
}

// ringStatus returns the members n sees and the partition count.
func (c *cluster) ringStatus(t T, n *node) ([]ringMember, int) {
	t.Helper()
	var data struct {
		Members        []ringMember `json:"members"`
		PartitionCount int          `json:"partition_count"`
	}
	apiGet(t, "http://"+n.webAddr, "/promgov/api/v1/status/ring", url.Values{}, &data)
	return data.Members, data.PartitionCount
}

// activeIngesters lists the ACTIVE ingesters the distributor sees.
func (c *cluster) activeIngesters(t T) []string {
	t.Helper()
	var names []string
	for _, m := range c.ring(t, c.distributor) {
		if m.Role == "ingester" && m.State == "ACTIVE" {
			names = append(names, m.Name)
		}
	}
	return names
}

// waitActive waits until the distributor sees exactly n ACTIVE ingesters,
// routes to exactly them (its placement, rebuilt after the member list
// changes, spreads every partition over them) and is ready. The
// distributor may still be starting (its HTTP port not yet open) while the
// ingesters join its gossip port: a refused connection is one more
// attempt, not a failure. The distributor is not ready until the wait
// succeeds (waitReady, last, marks it).
func (c *cluster) waitActive(n int) {
	c.t.Helper()
	c.distributor.proc.ready.Store(false)
	var seen []ringMember
	var mu sync.Mutex
	eventually(c.t, func(ct *assert.CollectT) bool {
		if !c.distributor.proc.Running() {
			return true // reported by waitReady below, without waiting for the timeout
		}
		members, partitions := c.ringStatus(ct, c.distributor)
		mu.Lock()
		seen = members
		mu.Unlock()
		active, owned := 0, 0
		for _, m := range members {
			if m.Role == "ingester" && m.State == "ACTIVE" {
				active++
				owned += m.Partitions
			}
		}
		return active == n && owned == partitions
	}, 30*time.Second, 100*time.Millisecond, "distributor never saw (and placed partitions on) exactly %d ACTIVE ingesters; last seen: %+v", n,
		lazy(func() any { mu.Lock(); defer mu.Unlock(); return seen }))
	waitReady(c.t, c.distributor.proc, c.distributor.url("/-/ready"))
}

func (c *cluster) writeURL() string { return c.distributor.url("/api/v1/write") }
