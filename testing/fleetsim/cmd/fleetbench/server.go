package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/upproc"
)

// startServer starts the server on data dir, its output appended to logPath.
func startServer(ctx context.Context, bin, dir, logPath string) (*upproc.Server, error) {
	s, err := upproc.New(bin, dir, logPath)
	if err != nil {
		return nil, err
	}
	_, err = s.Start(ctx)
	return s, err
}

// passwordFile holds the engine's NATS password (app.EngineSecretFile).
func passwordFile(s *upproc.Server) string { return filepath.Join(s.DataDir(), app.EngineSecretFile) }

var (
	levelRE  = regexp.MustCompile(`level=(WARN|ERROR)`)
	msgRE    = regexp.MustCompile(`msg=("(?:\\.|[^"\\])*"|[^ ]*)`)
	errRE    = regexp.MustCompile(` err=("(?:\\.|[^"\\])*"|[^ ]*)`)
	digitsRE = regexp.MustCompile(`[0-9]+`)
)

// logProblems counts the server's warnings and errors by message, with
// numbers (ports, ids, sequences) replaced by N so that one kind counts
// as one; the most frequent first.
func logProblems(path string) (map[string]int, []string) {
	counts := map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return counts, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		lvl := levelRE.FindStringSubmatch(line)
		m := msgRE.FindStringSubmatch(line)
		if lvl == nil || m == nil {
			continue
		}
		msg := lvl[1] + " " + m[1]
		if e := errRE.FindStringSubmatch(line); e != nil {
			msg += ": " + e[1]
		}
		msg = digitsRE.ReplaceAllString(msg, "N")
		counts[truncate(msg, 160)]++
	}
	order := make([]string, 0, len(counts))
	for m := range counts {
		order = append(order, m)
	}
	sort.Slice(order, func(i, j int) bool { return counts[order[i]] > counts[order[j]] })
	return counts, order
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
