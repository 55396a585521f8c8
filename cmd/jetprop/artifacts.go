package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine/domain"
)

func artifactCommand() *command {
	return &command{
		name: "artifact", summary: "push, list, inspect, pull, remove, import and export wasm modules by name:tag",
		help: `Manage the artifact catalog: wasm modules kept in the server's object store
by sha256 digest, with names and tags pointing at them (vision:1.2). A task
runs one with 'jetprop task create --image vision:1.2' (or --image sha256:...).
'import' and 'export' move modules between the store and OCI registries.`,
		sub: []*command{
			artifactPushCommand(), artifactListCommand(), artifactGetCommand(),
			artifactPullCommand(), artifactRemoveCommand(),
			artifactImportCommand(), artifactExportCommand(),
		},
	}
}

func artifactPushCommand() *command {
	return &command{
		name: "push", args: "<module.wasm>", summary: "store a wasm module under name:tag and print its digest", minArgs: 1, maxArgs: 1,
		help: `Upload the wasm module (streamed, up to the server's --max-module) and point
name:tag at it; print its sha256 digest. The name defaults to the file's name
without its extension, the tag to latest. The same bytes are stored once
however often they are pushed; pushing other bytes to a tag moves the tag
(the catalog keeps the tag's history). A progress bar goes to stderr when it
is a terminal, or with --progress.

Example: jetprop artifact push ./vision.wasm --name vision:1.2`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var name string
			var progress bool
			fs.String(&name, "name", "", "store the module as `NAME[:TAG]` (default: the file's name, tag latest)")
			fs.Bool(&progress, "progress", false, "draw the progress bar on stderr even when it is not a terminal")
			return func(ctx context.Context, args []string) error {
				return pushArtifact(ctx, newClient(), e, args[0], name, progress || isTerminal(e.stderr))
			}
		},
	}
}

func pushArtifact(ctx context.Context, c *client.Client, e *env, path, name string, progress bool) error {
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var report func(int64)
	if progress {
		bar := newProgressBar(e.stderr, name, fi.Size())
		defer bar.finish()
		report = bar.update
	}
	a, err := c.PushArtifact(ctx, name, "", f, fi.Size(), report)
	if err != nil {
		return fmt.Errorf("push %s as %s: %w", path, name, err)
	}
	_, err = fmt.Fprintln(e.stdout, a.Digest)
	return err
}

func artifactListCommand() *command {
	return &command{
		name: "ls", aliases: []string{"list"}, summary: "list the catalog: name, tag, digest, size, created", maxArgs: 0,
		help: "List every name:tag sorted by name and tag: a table of name, tag, short digest, size and when the tag was set, or the API's JSON page with -o json.",
		setup: func(fs *flagSet, e *env) action {
			return listAction(fs, e, "rows", (*client.Client).ListArtifacts, artifactTable)
		},
	}
}

func artifactTable(w io.Writer, page httpapi.ArtifactList) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tTAG\tDIGEST\tSIZE\tCREATED")
	for _, a := range page.Artifacts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.Tag, shortDigest(a.Digest), byteSize(a.Size), stamp(a.CreatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if shown := page.Offset + len(page.Artifacts); shown < page.Total {
		_, err := fmt.Fprintf(w, "(%d of %d rows; more with --offset %d)\n", len(page.Artifacts), page.Total, shown)
		return err
	}
	return nil
}

// shortDigest keeps "sha256:" and the first 12 hex digits.
func shortDigest(d string) string {
	const keep = len(domain.DigestPrefix) + 12
	if len(d) <= keep {
		return d
	}
	return d[:keep]
}

// byteSize writes n in B, KiB, MiB or GiB.
func byteSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

func artifactGetCommand() *command {
	return &command{
		name: "get", args: "<ref>", summary: "print what a name:tag or digest points at, as JSON", minArgs: 1, maxArgs: 1,
		help: "Print the catalog entry of <ref> (name:tag, name for name:latest, or sha256:<hex>) as JSON: digest, size, media type, source, and the tag's history.",
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			return func(ctx context.Context, args []string) error {
				a, err := newClient().GetArtifact(ctx, args[0])
				if err != nil {
					return err
				}
				return printJSON(e.stdout, a)
			}
		},
	}
}

func artifactPullCommand() *command {
	return &command{
		name: "pull", args: "<ref>", summary: "download a module", minArgs: 1, maxArgs: 1,
		help: `Download the module <ref> names (name:tag, name, or sha256:<hex>), check its
digest, and write it to the file given by -o (then print the digest), or to
stdout when that is not a terminal. An existing FILE is kept unless --force.

Example: jetprop artifact pull vision:1.2 -o vision.wasm`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var out string
			var force bool
			fs.String(&out, "out", "", "write the module to `FILE` (- for stdout)")
			fs.Alias("o", "out")
			fs.Bool(&force, "force", false, "overwrite FILE when it exists")
			return func(ctx context.Context, args []string) error {
				return pullArtifact(ctx, newClient(), e, args[0], out, force)
			}
		},
	}
}

func pullArtifact(ctx context.Context, c *client.Client, e *env, ref, out string, force bool) error {
	switch {
	case out == "-" || out == "" && !isTerminal(e.stdout):
		_, _, err := c.DownloadArtifact(ctx, ref, e.stdout)
		return err
	case out == "":
		return usageErr("artifact pull", errors.New("stdout is a terminal: give -o FILE"))
	}
	if _, err := os.Lstat(out); err == nil && !force {
		return fileExists(out)
	}
	digest, err := downloadTo(ctx, c, ref, out, force)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, digest)
	return err
}

// fileExists is the refusal to overwrite path.
func fileExists(path string) error {
	return fmt.Errorf("%s exists; give --force to overwrite it", path)
}

// downloadTo writes the module to a temp file beside path and moves it to
// path once the digest checked out: renamed over it with force, else
// linked, which fails when path appeared meanwhile.
func downloadTo(ctx context.Context, c *client.Client, ref, path string, force bool) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".jetprop-pull-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // after the rename: nothing left to remove
	digest, _, err := c.DownloadArtifact(ctx, ref, f)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if force {
		return digest, os.Rename(f.Name(), path)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		return "", fileExists(path)
	} else if err != nil {
		return "", err
	}
	return digest, nil
}

func artifactRemoveCommand() *command {
	return &command{
		name: "rm", aliases: []string{"delete"}, args: "<ref>", summary: "remove a tag, a name or a digest", minArgs: 1, maxArgs: 1,
		help: `Remove the tag <ref> names (name:tag; name alone is name:latest), every tag
of a name with --all, or every tag pointing at sha256:<hex>. A module no tag
points at any more is deleted from the object store; the server refuses
while a task that is not deleted uses it (delete those tasks first).`,
		setup: func(fs *flagSet, e *env) action {
			newClient := clientFlag(fs)
			var all bool
			fs.Bool(&all, "all", false, "remove every tag of the artifact <ref> (a name)")
			return func(ctx context.Context, args []string) error {
				c, ref := newClient(), args[0]
				var err error
				if all {
					err = c.DeleteArtifactName(ctx, ref)
				} else {
					err = c.DeleteArtifact(ctx, ref)
				}
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "%s deleted\n", ref)
				return err
			}
		},
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one line, redrawn in place with \r at most every
// progressEvery:  name [#######.......]  45%  12.3 MiB / 27.1 MiB  8.4 MiB/s
type progressBar struct {
	w     io.Writer
	label string
	total int64
	start time.Time

	mu    sync.Mutex
	n     int64
	drawn time.Time
}

const (
	progressEvery = 100 * time.Millisecond
	progressWidth = 30
)

func newProgressBar(w io.Writer, label string, total int64) *progressBar {
	return &progressBar{w: w, label: label, total: total, start: time.Now()}
}

// update records n bytes sent so far (called as the upload goes).
func (b *progressBar) update(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n = n
	if now := time.Now(); now.Sub(b.drawn) >= progressEvery {
		b.drawn = now
		b.draw()
	}
}

// finish draws the last state and ends the line.
func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw()
	fmt.Fprintln(b.w)
}

func (b *progressBar) draw() {
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(b.n)/float64(b.total), 1)
	}
	filled := int(frac * progressWidth)
	rate := float64(b.n) / max(time.Since(b.start).Seconds(), 1e-3)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%%  %s / %s  %s/s ", b.label,
		strings.Repeat("#", filled), strings.Repeat(".", progressWidth-filled), frac*100,
		byteSize(b.n), byteSize(b.total), byteSize(int64(rate)))
}
