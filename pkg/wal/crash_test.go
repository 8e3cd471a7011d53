package wal

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// crashDirEnv makes the test binary act as the appender process of
// TestKill9KeepsAcknowledgedRecords.
const crashDirEnv = "PROMGOV_WAL_CRASH_DIR"

// crashPolicyEnv carries the sync policy to the appender process.
const crashPolicyEnv = "PROMGOV_WAL_CRASH_POLICY"

// TestCrashHelperProcess is the appender process: it appends records from
// several goroutines forever and prints "ack N" after each Append returns.
func TestCrashHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9KeepsAcknowledgedRecords")
	}
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.SegmentSize = 64 << 10
	cfg.SyncPolicy = os.Getenv(crashPolicyEnv)
	w, err := Open(cfg, nil, nil, nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; ; i += 4 {
				if _, err := w.Append(context.Background(), RecordBatch, payload(i, 500)); err != nil {
					fmt.Println("append:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d\n", i)
				_ = out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestKill9KeepsAcknowledgedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	for _, policy := range []string{SyncGroup, SyncInterval} {
		t.Run(policy, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashPolicyEnv+"="+policy)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())

			acked := map[int]bool{}
			sc := bufio.NewScanner(stdout)
			for sc.Scan() && len(acked) < 2000 {
				line := sc.Text()
				num, ok := strings.CutPrefix(line, "ack ")
				require.True(t, ok, "unexpected helper output %q", line)
				i, err := strconv.Atoi(num)
				require.NoError(t, err)
				acked[i] = true
			}
			require.Len(t, acked, 2000)
			require.NoError(t, cmd.Process.Kill())
			_ = cmd.Wait()

			w, _ := openTest(t, Config{
				Dir: dir, SegmentSize: 64 << 10, SyncPolicy: SyncGroup,
				OverflowPolicy: OverflowBackpressure,
			}, nil)
			r := w.NewReader(w.Checkpoint())
			defer r.Close()
			found := map[int]bool{}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // read what is there, without waiting
			for {
				rec, err := r.Next(ctx)
				if err != nil {
					require.ErrorIs(t, err, context.Canceled)
					break
				}
				i := recordIndex(t, rec.Payload)
				require.Equal(t, payload(i, 500), rec.Payload)
				require.False(t, found[i], "record %d read twice", i)
				found[i] = true
			}
			for i := range acked {
				require.True(t, found[i], "acknowledged record %d lost", i)
			}
			t.Logf("policy %s: acknowledged %d (seen by the test), found %d after kill -9", policy, len(acked), len(found))
		})
	}
}
