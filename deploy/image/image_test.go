package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// imageFile is one entry of the image's file system.
type imageFile struct {
	hdr  *tar.Header
	body []byte
}

// savedImage is a `docker save` tarball, read with the standard library
// only (so the builder's library does not check its own output).
type savedImage struct {
	size     int64
	repoTags []string
	config   struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Created      string `json:"created"`
		Config       struct {
			User         string              `json:"User"`
			Entrypoint   []string            `json:"Entrypoint"`
			Cmd          []string            `json:"Cmd"`
			Env          []string            `json:"Env"`
			WorkingDir   string              `json:"WorkingDir"`
			ExposedPorts map[string]struct{} `json:"ExposedPorts"`
			Volumes      map[string]struct{} `json:"Volumes"`
			Labels       map[string]string   `json:"Labels"`
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []struct {
			CreatedBy string `json:"created_by"`
		} `json:"history"`
	}
	layers []savedLayer
	files  map[string]imageFile // by path, across layers
}

type savedLayer struct {
	compressed, uncompressed int64
	diffID                   string
	paths                    []string
}

// TestImage builds the image twice with `make image` (as a release would)
// and checks that the two tarballs are byte-identical, that the config has
// the user, command and labels the chart and docs rely on, that the file
// system holds exactly the expected files with the expected owners, and
// that the binaries are static and print the version make gave them.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the image (static binaries): not in -short")
	}
	const version, revision = "v0.0.0-imagetest", "0123456789abcdef0123456789abcdef01234567"
	makeImage := func(dir string) string {
		out := filepath.Join(dir, "promgov-image.tar")
		cmd := exec.Command("make", "-C", "../..", "image", "BIN="+dir, "IMAGE_TARBALL="+out,
			"VERSION="+version, "REVISION="+revision, "IMAGE=promgov/promgov:test")
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "make image:\n%s", b)
		return out
	}
	first, second := makeImage(t.TempDir()), makeImage(t.TempDir())
	b1, err := os.ReadFile(first)
	require.NoError(t, err)
	b2, err := os.ReadFile(second)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(b1), sha256.Sum256(b2), "two builds of the same commit differ: the build is not reproducible")

	img := readSavedImage(t, b1)
	for i, l := range img.layers {
		t.Logf("layer %d: %s, %d bytes compressed, %d uncompressed, %d entries", i, img.config.History[i].CreatedBy, l.compressed, l.uncompressed, len(l.paths))
	}
	t.Logf("image tarball: %d bytes", img.size)

	require.Equal(t, []string{"promgov/promgov:test"}, img.repoTags)
	c := img.config
	require.Equal(t, "linux", c.OS)
	require.Equal(t, runtime.GOARCH, c.Architecture)
	require.Equal(t, "65532:65532", c.Config.User, "non-root")
	require.Empty(t, c.Config.Entrypoint, "no entrypoint: the chart names the binary")
	require.Equal(t, []string{"/bin/distributor", "--version"}, c.Config.Cmd)
	require.Contains(t, c.Config.Env, "PATH=/bin")
	require.Contains(t, c.Config.Volumes, "/data")
	require.Equal(t, version, c.Config.Labels["org.opencontainers.image.version"])
	require.Equal(t, revision, c.Config.Labels["org.opencontainers.image.revision"])
	require.Len(t, img.layers, 2)
	require.Len(t, c.History, 2)
	for i, l := range img.layers {
		require.Equal(t, c.RootFS.DiffIDs[i], l.diffID, "layer %d's diff_id", i)
	}

	// Exactly these files, with these owners and modes.
	type want struct {
		mode     int64
		uid, gid int
		dir      bool
	}
	root := want{mode: 0o755, dir: true}
	wantFiles := map[string]want{
		"bin/": root, "bin/distributor": {mode: 0o755}, "bin/ingester": {mode: 0o755}, "bin/loadgen": {mode: 0o755}, "bin/reloader": {mode: 0o755},
		"bin/promgovctl": {mode: 0o755},
		"data/":          {mode: 0o755, uid: 65532, gid: 65532, dir: true},
		"etc/":           root, "etc/group": {mode: 0o644}, "etc/passwd": {mode: 0o644},
		"etc/promgov/": root, "etc/promgov/promgov.yml": {mode: 0o644},
		"home/": root, "home/nonroot/": {mode: 0o700, uid: 65532, gid: 65532, dir: true},
		"tmp/": {mode: 0o1777, dir: true},
	}
	var paths []string
	for p := range img.files {
		paths = append(paths, p)
	}
	var wantPaths []string
	for p := range wantFiles {
		wantPaths = append(wantPaths, p)
	}
	slices.Sort(paths)
	slices.Sort(wantPaths)
	require.Equal(t, wantPaths, paths)
	for p, w := range wantFiles {
		h := img.files[p].hdr
		require.Equal(t, w.mode, h.Mode, "%s mode", p)
		require.Equal(t, w.uid, h.Uid, "%s uid", p)
		require.Equal(t, w.gid, h.Gid, "%s gid", p)
		require.Equal(t, w.dir, h.Typeflag == tar.TypeDir, "%s is a directory", p)
		require.Equal(t, c.Created, h.ModTime.UTC().Format("2006-01-02T15:04:05Z"), "%s's time is the image's creation time", p)
	}
	require.Contains(t, string(img.files["etc/passwd"].body), "nonroot:x:65532:65532:")
	example, err := os.ReadFile("../promgov.yml")
	require.NoError(t, err)
	require.Equal(t, string(example), string(img.files["etc/promgov/promgov.yml"].body))

	// The binaries run in a scratch image (static, no interpreter) and
	// print what `make image` set with -ldflags.
	dir := t.TempDir()
	for _, bin := range []string{"distributor", "ingester", "loadgen", "reloader", "promgovctl"} {
		p := filepath.Join(dir, bin)
		require.NoError(t, os.WriteFile(p, img.files["bin/"+bin].body, 0o755))
		f, err := elf.Open(p)
		require.NoError(t, err)
		for _, prog := range f.Progs {
			require.NotEqual(t, elf.PT_INTERP, prog.Type, "%s is dynamically linked", bin)
		}
		require.NoError(t, f.Close())
		out, err := exec.Command(p, "--version").Output()
		require.NoError(t, err, "%s --version", bin)
		require.Contains(t, string(out), bin+", version "+version+" (branch: ")
		require.Contains(t, string(out), "revision: "+revision)
		require.Contains(t, string(out), "build user:       promgov@image")
		// The long-running binaries are linked with the Makefile's
		// GODEBUG_DEFAULT (the runtime's monitor stays awake:
		// docs/benchmarks.md); the short-lived ones print nothing extra.
		linked := bytes.Contains(img.files["bin/"+bin].body, []byte("schedtrace=2147483647"))
		require.Equal(t, bin == "distributor" || bin == "ingester", linked, "%s linked with GODEBUG default schedtrace", bin)
	}
}

func readSavedImage(t *testing.T, b []byte) savedImage {
	t.Helper()
	img := savedImage{size: int64(len(b)), files: map[string]imageFile{}}
	blobs := map[string][]byte{}
	for _, f := range readTar(t, b) {
		blobs[f.hdr.Name] = f.body
	}
	var manifest []struct {
		Config   string   `json:"Config"`
		RepoTags []string `json:"RepoTags"`
		Layers   []string `json:"Layers"`
	}
	require.NoError(t, json.Unmarshal(blobs["manifest.json"], &manifest))
	require.Len(t, manifest, 1)
	img.repoTags = manifest[0].RepoTags
	require.NoError(t, json.Unmarshal(blobs[manifest[0].Config], &img.config))
	for _, name := range manifest[0].Layers {
		compressed, ok := blobs[name]
		require.True(t, ok, "layer %s missing", name)
		zr, err := gzip.NewReader(bytes.NewReader(compressed))
		require.NoError(t, err)
		raw, err := io.ReadAll(zr)
		require.NoError(t, err)
		sum := sha256.Sum256(raw)
		l := savedLayer{compressed: int64(len(compressed)), uncompressed: int64(len(raw)), diffID: "sha256:" + hex.EncodeToString(sum[:])}
		for _, f := range readTar(t, raw) {
			require.NotContains(t, img.files, f.hdr.Name, "%s is in two layers", f.hdr.Name)
			img.files[f.hdr.Name] = f
			l.paths = append(l.paths, f.hdr.Name)
		}
		img.layers = append(img.layers, l)
	}
	return img
}

// readTar returns every entry of a tar archive, in order.
func readTar(t *testing.T, b []byte) []imageFile {
	t.Helper()
	var out []imageFile
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, imageFile{hdr: h, body: body})
	}
}
