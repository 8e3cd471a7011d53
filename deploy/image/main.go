// Command image builds promgov's container image without a container engine
// (`make image`). It writes a `docker save` tarball (load it with `docker
// load` or `podman load`, push it with `crane push` or `skopeo copy
// docker-archive:...`) holding one small, non-root, scratch-based image:
//
//	/bin/<every binary of --bin-dir>     distributor, ingester, reloader, loadgen, promgovctl
//	/etc/passwd, /etc/group              root and nonroot (65532), as in distroless
//	/etc/promgov/promgov.yml             the example configuration
//	/data                                the WAL volume, owned by nonroot
//	/tmp                                 world-writable, sticky
//
// The image runs as 65532:65532, has no entrypoint (the Kubernetes chart
// and `docker run IMAGE /bin/ingester ...` name the binary) and by default
// prints the distributor's version. TLS roots are compiled into the
// binaries (golang.org/x/crypto/x509roots/fallback, used only when the
// system has none), so the image needs no CA bundle.
//
// The build is reproducible: every file's time is --created (the commit's
// time in `make image`), owners and modes are fixed, entries are sorted,
// and layers are gzip-compressed by the Go standard library; the same
// binaries and configuration give the same image digest. It uses
// go-containerregistry, the library crane and ko are built on.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's non-root user, the one distroless images call nonroot.
const (
	nonrootUID = 65532
	nonrootGID = 65532
)

// options are the builder's inputs.
type options struct {
	binDir   string // every regular file in it goes to /bin
	config   string // copied to /etc/promgov/promgov.yml
	out      string // docker save tarball to write
	tag      string // repository:tag recorded in the tarball
	arch     string // GOARCH of the binaries
	created  time.Time
	version  string
	revision string
}

func main() {
	var o options
	var created int64
	fs := flag.NewFlagSet("image", flag.ExitOnError)
	fs.StringVar(&o.binDir, "bin-dir", "bin/image", "Directory of the linux binaries to put in /bin.")
	fs.StringVar(&o.config, "config", "deploy/promgov.yml", "Configuration file to put in /etc/promgov/promgov.yml.")
	fs.StringVar(&o.out, "out", "bin/promgov-image.tar", "Image tarball to write (docker save format).")
	fs.StringVar(&o.tag, "tag", "promgov/promgov:dev", "Image reference recorded in the tarball.")
	fs.StringVar(&o.arch, "arch", "amd64", "Architecture of the binaries (GOARCH).")
	fs.Int64Var(&created, "created", 0, "Creation time and every file's time, in Unix seconds (the commit's time keeps the build reproducible).")
	fs.StringVar(&o.version, "version", "", "Version, for the org.opencontainers.image.version label.")
	fs.StringVar(&o.revision, "revision", "", "Source revision, for the org.opencontainers.image.revision label.")
	_ = fs.Parse(os.Args[1:])
	o.created = time.Unix(created, 0).UTC()
	digest, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s %s\n", o.out, o.tag, digest)
}

// build writes the image tarball and returns the image's digest.
func build(o options) (v1.Hash, error) {
	ref, err := name.NewTag(o.tag)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("--tag: %w", err)
	}
	base, err := baseLayer(o)
	if err != nil {
		return v1.Hash{}, err
	}
	bins, err := binLayer(o)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: o.arch,
		OS:           "linux",
		Created:      v1.Time{Time: o.created},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", nonrootUID, nonrootGID),
			Env:        []string{"PATH=/bin"},
			Cmd:        []string{"/bin/distributor", "--version"},
			WorkingDir: "/",
			// Informational: the chart sets every address with flags.
			ExposedPorts: map[string]struct{}{"9500/tcp": {}, "9501/tcp": {}, "9095/tcp": {}, "7946/tcp": {}, "7946/udp": {}},
			Volumes:      map[string]struct{}{"/data": {}},
			Labels: map[string]string{
				"org.opencontainers.image.title":       "promgov",
				"org.opencontainers.image.description": "Clustered Prometheus remote write governance proxy: distributor and ingester",
				"org.opencontainers.image.source":      "https://github.com/promgov/promgov",
				"org.opencontainers.image.version":     o.version,
				"org.opencontainers.image.revision":    o.revision,
				"org.opencontainers.image.created":     o.created.Format(time.RFC3339),
			},
		},
	})
	if err != nil {
		return v1.Hash{}, err
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: o.created}, CreatedBy: "promgov image: users, /data, /tmp, example configuration"}},
		mutate.Addendum{Layer: bins, History: v1.History{Created: v1.Time{Time: o.created}, CreatedBy: "promgov image: binaries in /bin"}},
	)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := tarball.WriteToFile(o.out, ref, img); err != nil {
		return v1.Hash{}, fmt.Errorf("write %s: %w", o.out, err)
	}
	return img.Digest()
}

// entry is one file or directory of a layer.
type entry struct {
	path     string // absolute, without the leading slash
	mode     int64  // permission bits (and sticky)
	uid, gid int
	dir      bool
	body     []byte
}

// baseLayer holds what changes rarely: users, directories and the example
// configuration.
func baseLayer(o options) (v1.Layer, error) {
	cfg, err := os.ReadFile(o.config)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	return layer(o.created, []entry{
		{path: "data", mode: 0o755, uid: nonrootUID, gid: nonrootGID, dir: true},
		{path: "etc", mode: 0o755, dir: true},
		{path: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{path: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{path: "etc/promgov", mode: 0o755, dir: true},
		{path: "etc/promgov/promgov.yml", mode: 0o644, body: cfg},
		{path: "home", mode: 0o755, dir: true},
		{path: "home/nonroot", mode: 0o700, uid: nonrootUID, gid: nonrootGID, dir: true},
		{path: "tmp", mode: 0o1777, dir: true},
	})
}

// binLayer holds every regular file of o.binDir as /bin/<name>.
func binLayer(o options) (v1.Layer, error) {
	des, err := os.ReadDir(o.binDir)
	if err != nil {
		return nil, fmt.Errorf("--bin-dir: %w", err)
	}
	entries := []entry{{path: "bin", mode: 0o755, dir: true}}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(o.binDir, de.Name()))
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{path: "bin/" + de.Name(), mode: 0o755, body: b})
	}
	if len(entries) == 1 {
		return nil, fmt.Errorf("--bin-dir %s holds no binaries; run `make image`", o.binDir)
	}
	return layer(o.created, entries)
}

// layer renders entries as a tar in path order, every header fixed but
// for the entry's own fields, and wraps it as a gzip layer.
func layer(mtime time.Time, entries []entry) (v1.Layer, error) {
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.path, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: mtime,
			Uname: userName(e.uid), Gname: userName(e.gid),
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, e.path+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if len(b) == 0 {
		return nil, errors.New("empty layer")
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

func userName(id int) string {
	switch id {
	case 0:
		return "root"
	case nonrootUID:
		return "nonroot"
	}
	return strconv.Itoa(id)
}
