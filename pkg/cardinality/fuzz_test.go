package cardinality

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"testing"
)

// withCRC appends a valid checksum, so fuzzed bodies reach the decoder
// instead of stopping at the checksum.
func withCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.ChecksumIEEE(body))
}

func seedState(f *testing.F) (*Tracker, *clock) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 20
	cfg.Limits.Defaults.MaxValuesPerLabel = 10
	tr, err := New(cfg, Options{Now: c.now})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 40 {
		tr.Observe(mkSeries("t", "m", i, "pod", string(rune('a'+i%12))), c.now())
	}
	// A label that appears after the metric's first series: an unknown
	// label-drop estimate (a complete epoch) in the seeds.
	for i := range 5 {
		tr.Observe(mkSeries("t", "m", i, "pod", "a", "zone", string(rune('a'+i))), c.now())
	}
	return tr, c
}

// v1Seed returns a testdata file written before label-drop estimates,
// without its checksum.
func v1Seed(f *testing.F, name string) []byte {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		f.Fatal(err)
	}
	return b[:len(b)-4]
}

func FuzzRestore(f *testing.F) {
	tr, c := seedState(f)
	var buf bytes.Buffer
	if err := tr.Snapshot(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes()[:buf.Len()-4])
	f.Add([]byte{})
	f.Add(snapshotMagic)
	f.Add(v1Seed(f, "snapshot-v1.bin"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fresh, err := New(tr.cfg, Options{Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		_ = fresh.Restore(body)
		if err := fresh.Restore(withCRC(body)); err != nil {
			return
		}
		// Whatever restored must snapshot and restore again, and answer.
		var again bytes.Buffer
		if err := fresh.Snapshot(&again); err != nil {
			t.Fatal(err)
		}
		if err := fresh.Restore(again.Bytes()); err != nil {
			t.Fatal(err)
		}
		if _, err := fresh.Metrics(context.Background(), Query{Sketches: true}); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzImportMetric(f *testing.F) {
	tr, c := seedState(f)
	b, err := tr.ExportMetric("t", "m", c.now())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:len(b)-4])
	f.Add(exportMagic)
	f.Add(v1Seed(f, "export-v1.bin"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fresh, err := New(tr.cfg, Options{Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		_, _, _ = fresh.ImportMetric(body, c.now())
		tenant, metric, err := fresh.ImportMetric(withCRC(body), c.now())
		if err != nil {
			return
		}
		if _, err := fresh.ExportMetric(tenant, metric, c.now()); err != nil {
			t.Fatal(err)
		}
		fresh.Observe(mkSeries(tenant, metric, 1), c.now())
	})
}

func FuzzMergePeerSketch(f *testing.F) {
	tr, c := seedState(f)
	b, err := tr.TenantSketch("t", c.now())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		fresh, err := New(tr.cfg, Options{Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.MergePeerSketch("p", "t", data, c.now()); err != nil {
			return
		}
		fresh.Rotate(c.now())
		if _, err := fresh.TenantSketch("t", c.now()); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeAnswers(f *testing.F) {
	tr, _ := seedState(f)
	ctx := context.Background()
	ms, err := tr.Metric(ctx, "m", Query{Sketches: true})
	if err != nil {
		f.Fatal(err)
	}
	ts, err := tr.Tenants(ctx, Query{Sketches: true})
	if err != nil {
		f.Fatal(err)
	}
	list, err := tr.Metrics(ctx, Query{Sketches: true, Labels: true})
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range []any{
		Envelope[[]MetricCardinality]{Status: "success", Data: ms},
		Envelope[[]MetricCardinality]{Status: "success", Data: list},
		Envelope[[]TenantCardinality]{Status: "success", Data: ts},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if rows, err := DecodeMetrics(data); err == nil {
			_, _ = MergeMetrics([][]MetricCardinality{rows, rows}, Query{Sketches: true})
		}
		if rows, err := DecodeTenants(data); err == nil {
			_, _ = MergeTenants([][]TenantCardinality{rows, rows}, Query{Sketches: true})
		}
	})
}
