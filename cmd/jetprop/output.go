package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
)

const defaultServer = "http://127.0.0.1:7070"

// clientFlag declares --server, --api-token and --ca and returns a maker
// of the API client. The token's flag is not --token: artifact import and
// export have a --token already, the registry's.
func clientFlag(fs *flagSet) func() *client.Client {
	var server, token string
	fs.String(&server, "server", defaultServer, "`URL` of the jetprop HTTP API")
	ca := &caFile{}
	fs.Set.Var(ca, "ca", "PEM `file` of the CA of an https --server with a private CA (default: the system's CAs)", fs.envName("ca"))
	fs.String(&token, "api-token", "", "API `token` for a server started with --auth on (prefer the variable: a flag shows in the process list); "+
		"default on a loopback --server: $JETPROP_DATA/admin.token (./jetprop-data), if readable")
	var retryFor time.Duration
	fs.Duration(&retryFor, "retry-for", client.DefaultRetryFor, "how long to keep sending again a read or a create the server answers 503 (its store electing a leader) "+
		"or cannot be reached for; creates carry an Idempotency-Key, so a repeat makes no second task; 0: send once")
	return func() *client.Client {
		if token == "" {
			token = localAdminToken(server, fs.lookup)
		}
		retry := client.WithRetry(client.DefaultRetryAttempts, retryFor)
		if retryFor <= 0 {
			retry = client.WithRetry(1, 0)
		}
		return apiClient(server, ca, client.WithToken(token), retry)
	}
}

// localAdminToken returns the admin token a server on this machine
// bootstrapped (app.AdminTokenPath in $JETPROP_DATA, else in the default
// data directory), when server is a loopback URL and the file is readable;
// else "". The token is never sent to a server on another machine.
func localAdminToken(server string, lookup func(string) (string, bool)) string {
	u, err := url.Parse(server)
	if err != nil || !app.Loopback(u.Hostname()) {
		return ""
	}
	dir, _ := lookup("JETPROP_DATA")
	b, err := os.ReadFile(app.AdminTokenPath(cmp.Or(dir, app.DefaultData)))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Output formats.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// outputFlag declares -o/--output.
func outputFlag(fs *flagSet) *string {
	var format string
	fs.Choice(&format, "output", formatTable, []string{formatTable, formatJSON}, "output `format`: table or json")
	fs.Alias("o", "output")
	return &format
}

// Choice declares a string flag that takes one of choices.
func (f *flagSet) Choice(p *string, name, def string, choices []string, usage string) {
	parse := func(s string) (string, error) {
		if !slices.Contains(choices, s) {
			return "", fmt.Errorf("%q: want one of %s", s, strings.Join(choices, ", "))
		}
		return s, nil
	}
	*p = def
	f.Set.Var(&choice{p: p, parse: parse}, name, usage, f.envName(name))
}

type choice struct {
	p     *string
	parse func(string) (string, error)
}

func (c *choice) String() string {
	if c == nil || c.p == nil {
		return ""
	}
	return *c.p
}

func (c *choice) Set(s string) error {
	v, err := c.parse(s)
	if err == nil {
		*c.p = v
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// printResult writes a task's result: a JSON string as its text, null as
// nothing, anything else as compact JSON; always ending in a newline.
func printResult(w io.Writer, raw json.RawMessage) error {
	text, err := resultText(raw)
	if err != nil || text == "" {
		return err
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	_, err = io.WriteString(w, text)
	return err
}

func resultText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	return compact(raw), nil
}

// compact returns raw JSON without insignificant space.
func compact(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// stamp formats a time for tables.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// pageFetch reads one page of a list from the API.
type pageFetch[P any] func(c *client.Client, ctx context.Context, offset, limit int) (P, error)

// listAction declares --server, --offset, --limit and -o for a list of
// what (a plural noun), and returns the action that fetches one page and
// prints it: the API's JSON with -o json, else table's rendering.
func listAction[P any](fs *flagSet, e *env, what string, fetch pageFetch[P], table func(io.Writer, P) error) action {
	newClient := clientFlag(fs)
	var offset, limit int
	fs.Int(&offset, "offset", 0, "skip this many "+what)
	fs.Int(&limit, "limit", httpapi.DefaultLimit, fmt.Sprintf("list at most this many %s (up to %d)", what, httpapi.MaxLimit))
	format := outputFlag(fs)
	return func(ctx context.Context, _ []string) error {
		page, err := fetch(newClient(), ctx, offset, limit)
		if err != nil {
			return err
		}
		if *format == formatJSON {
			return printJSON(e.stdout, page)
		}
		return table(e.stdout, page)
	}
}

// maxCell bounds the characters of a cell in table output; a longer one
// (a 10 KB task name, say) ends in "…" at this width. -o json shows
// every value whole.
const maxCell = 60

// table is a tabwriter for list output whose cells are capped at maxCell
// characters. Each Fprintf to it is one Write, split into cells at tabs
// and newlines.
type table struct{ *tabwriter.Writer }

func newTable(w io.Writer) *table { return &table{tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)} }

func (t *table) Write(p []byte) (int, error) {
	_, err := t.Writer.Write(capCells(p))
	return len(p), err
}

// capCells caps every cell of p, the text between tabs and newlines.
func capCells(p []byte) []byte {
	out := make([]byte, 0, len(p))
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '\t' && p[i] != '\n' {
			continue
		}
		out = append(out, capCell(p[start:i])...)
		if i < len(p) {
			out = append(out, p[i])
		}
		start = i + 1
	}
	return out
}

func capCell(b []byte) []byte {
	if utf8.RuneCount(b) <= maxCell {
		return b
	}
	n := 0
	for i := range string(b) {
		if n == maxCell-1 {
			return append(b[:i:i], "…"...)
		}
		n++
	}
	return b
}
