package ring

import (
	"fmt"
	"net/http"
	"time"

	"github.com/promgov/promgov/pkg/web"
)

// Status is the body of GET /promgov/api/v1/status/ring.
type Status struct {
	// Status is always "success".
	Status string `json:"status"`
	// Data is the ring as this node sees it.
	Data StatusData `json:"data"`
}

// StatusData lists the members and the partition count.
type StatusData struct {
	// Members are all live members, sorted by name.
	Members []MemberStatus `json:"members"`
	// PartitionCount is the number of partitions.
	PartitionCount int `json:"partition_count"`
}

// MemberStatus is one member with the partitions it owns.
type MemberStatus struct {
	// Name is the member name.
	Name string `json:"name"`
	// Role is ingester or distributor.
	Role Role `json:"role"`
	// State is JOINING, ACTIVE or LEAVING.
	State State `json:"state"`
	// Address is the gossip host:port.
	Address string `json:"address"`
	// GRPCAddress is the ingester's gRPC host:port (empty for distributors).
	GRPCAddress string `json:"grpc_address"`
	// Partitions is the number of partitions the member owns.
	Partitions int `json:"partitions"`
	// Share is Partitions / PartitionCount (0..1).
	Share float64 `json:"share"`
}

// Status returns the ring status served by StatusHandler.
func (r *Ring) Status() Status {
	p := r.Placement()
	members := r.Members()
	out := Status{Status: "success", Data: StatusData{
		Members:        make([]MemberStatus, 0, len(members)),
		PartitionCount: p.PartitionCount(),
	}}
	for _, m := range members {
		out.Data.Members = append(out.Data.Members, MemberStatus{
			Name: m.Name, Role: m.Role, State: m.State, Address: m.Address, GRPCAddress: m.GRPCAddress,
			Partitions: p.Partitions(m.Name), Share: p.Share(m.Name),
		})
	}
	return out
}

// StatusHandler serves the ring status as JSON (GET /promgov/api/v1/status/ring).
func (r *Ring) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		web.WriteJSON(w, r.Status().Data)
	})
}

// pageData is what the HTML template renders.
type pageData struct {
	Self        Member
	Status      StatusData
	Fingerprint string
	Now         string
}

// PageHandler serves a human-readable, auto-refreshing HTML table of the
// ring (GET /ring).
func (r *Ring) PageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p := r.Placement()
		d := pageData{
			Self:        r.Self(),
			Status:      r.Status().Data,
			Fingerprint: fmt.Sprintf("%016x", p.Fingerprint()),
			Now:         time.Now().UTC().Format(time.RFC3339),
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := r.page.Execute(w, d); err != nil {
			r.logger.Warn("rendering ring page failed", "err", err)
		}
	})
}

// PathStatus is the ring status API path.
const PathStatus = web.APIPrefix + "/status/ring"

// RegisterRoutes mounts StatusHandler on GET /promgov/api/v1/status/ring and
// PageHandler on GET /ring.
func (r *Ring) RegisterRoutes(mux *http.ServeMux) {
	mux.Handle("GET "+PathStatus, r.StatusHandler())
	mux.Handle("GET /ring", r.PageHandler())
}

// pageTemplate is the html/template of the /ring page.
const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>promgov ring</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }
th { background: #eee; }
.ACTIVE { color: #070; } .JOINING { color: #a60; } .LEAVING { color: #a00; }
</style>
</head>
<body>
<h1>promgov ring</h1>
<p>Seen by <b>{{.Self.Name}}</b> ({{.Self.Role}}, {{.Self.State}}) at {{.Now}}.
{{.Status.PartitionCount}} partitions, placement fingerprint <code>{{.Fingerprint}}</code>. Refreshes every 5s.</p>
<table>
<tr><th>Name</th><th>Role</th><th>State</th><th>Gossip address</th><th>gRPC address</th><th>Partitions</th><th>Share</th></tr>
{{range .Status.Members}}<tr><td>{{.Name}}</td><td>{{.Role}}</td><td class="{{.State}}">{{.State}}</td><td>{{.Address}}</td><td>{{.GRPCAddress}}</td><td>{{.Partitions}}</td><td>{{printf "%.1f%%" (mul100 .Share)}}</td></tr>
{{else}}<tr><td colspan="7">No members.</td></tr>
{{end}}</table>
</body>
</html>
`
