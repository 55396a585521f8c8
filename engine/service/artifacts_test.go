package service_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func (f serviceFixture) push(t *testing.T, name, tag string, module []byte) engine.ArtifactTag {
	t.Helper()
	row, err := f.svc.PushArtifact(testCtx(t), name, tag, bytes.NewReader(module))
	if err != nil {
		t.Fatalf("push %s %s: %v", name, tag, err)
	}
	return row
}

// stored reports whether the object store holds digest.
func (f serviceFixture) stored(t *testing.T, digest string) bool {
	t.Helper()
	_, ok, err := f.modules.Stat(testCtx(t), digest)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestService_PushArtifact(t *testing.T) {
	f := newService(t)
	ctx := testCtx(t)
	add, echo := wasmfixtures.Add(), wasmfixtures.Echo()

	v1 := f.push(t, "vision:1.0", "", add)
	if v1.Name != "vision" || v1.Tag != "1.0" || !domain.ValidDigest(v1.Digest) || v1.Size != int64(len(add)) || v1.Source != "upload" || v1.Created.IsZero() {
		t.Fatalf("pushed %+v", v1)
	}
	latest := f.push(t, "vision", "", add) // the default tag, the same bytes
	if latest.Tag != engine.DefaultTag || latest.Digest != v1.Digest {
		t.Fatalf("pushed again %+v", latest)
	}
	moved := f.push(t, "vision", "latest", echo)
	if moved.Digest == v1.Digest {
		t.Fatal("other bytes, same digest")
	}

	rows, total := f.svc.ListArtifacts(0, 10)
	if total != 2 || rows[0].Tag != "1.0" || rows[1].Tag != "latest" || rows[1].Digest != moved.Digest {
		t.Fatalf("list %d %+v", total, rows)
	}
	got, err := f.svc.GetArtifact(ctx, "vision")
	if err != nil || got.Digest != moved.Digest || len(got.History) != 2 || got.History[1].Previous != v1.Digest {
		t.Fatalf("get vision: %+v %v", got, err)
	}
	for ref, want := range map[string]string{"vision:1.0": v1.Digest, "vision:latest": moved.Digest, v1.Digest: v1.Digest} {
		d, size, err := f.svc.ResolveModule(ctx, ref)
		if err != nil || d != want || size <= 0 {
			t.Errorf("resolve %s: %s %d %v, want %s", ref, d, size, err, want)
		}
	}
	for _, ref := range []string{"vision:9", "nope", "sha256:" + string(bytes.Repeat([]byte("0"), 64))} {
		_, _, err := f.svc.ResolveModule(ctx, ref)
		checkErr(t, err, domain.ErrNotFound)
	}
	_, _, err = f.svc.ResolveModule(ctx, "ghcr.io/x/vision:1")
	checkErr(t, err, domain.ErrInvalid)

	_, rc, err := f.svc.OpenArtifact(ctx, "vision:1.0")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, add) {
		t.Fatalf("open: %d bytes, %v", len(b), err)
	}
}

// TestService_PushArtifact_Refused: a bad name, tag or module stores
// nothing and appends no event.
func TestService_PushArtifact_Refused(t *testing.T) {
	f := newService(t)
	tests := []struct {
		name, ref, tag string
		module         []byte
		wantErr        error
	}{
		{"not wasm", "vision", "", wasmfixtures.Invalid(), domain.ErrNotWasm},
		{"empty", "vision", "", nil, domain.ErrNotWasm},
		{"bad name", "my.vision", "", wasmfixtures.Add(), domain.ErrInvalid},
		{"bad tag", "vision", "-1", wasmfixtures.Add(), domain.ErrInvalid},
		{"tag twice", "vision:1", "2", wasmfixtures.Add(), domain.ErrInvalid},
		{"a digest", dA, "", wasmfixtures.Add(), domain.ErrInvalid},
		{"no name", "", "", wasmfixtures.Add(), domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.PushArtifact(testCtx(t), tc.ref, tc.tag, bytes.NewReader(tc.module))
			checkErr(t, err, tc.wantErr)
		})
	}
	if _, total := f.svc.ListArtifacts(0, 10); total != 0 {
		t.Fatalf("%d rows after refused pushes", total)
	}
	if seq, err := f.store.LastSeq(testCtx(t), events.KindArtifact); err != nil || seq != 0 {
		t.Fatalf("ARTIFACTS last sequence %d, %v", seq, err)
	}
	for _, m := range [][]byte{wasmfixtures.Add(), wasmfixtures.Invalid()} {
		if f.stored(t, digestOf(m)) {
			t.Fatal("a refused module was stored")
		}
	}
}

func digestOf(module []byte) string {
	return domain.DigestOf(module)
}

func TestService_CreateTask_Image(t *testing.T) {
	f := newService(t)
	add := f.push(t, "vision", "1.2", wasmfixtures.Add())
	tests := []struct {
		image      string
		wantModule string
		wantErr    error
	}{
		{image: "vision:1.2", wantModule: add.Digest},
		{image: add.Digest, wantModule: add.Digest},
		{image: "vision", wantErr: domain.ErrInvalid}, // vision:latest is not in the catalog: its dispatch would fail
		{image: "x:1", wantErr: domain.ErrInvalid},
		{image: "demo/add:1", wantErr: domain.ErrInvalid}, // no registry host: names the catalog
		{image: "ghcr.io/jetprop/add:1"},
		{image: "localhost:5000/demo/add:v2"},
		{image: "https://example.com/add.wasm"},
		{image: dA, wantErr: domain.ErrInvalid},
		{image: "sha256:abc", wantErr: domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.image, func(t *testing.T) {
			task, err := f.svc.CreateTask(testCtx(t), events.TaskCreated{Name: "add", ImageURL: tc.image}, nil)
			checkErr(t, err, tc.wantErr)
			if err != nil {
				return
			}
			if task.Module != tc.wantModule || task.ImageURL != tc.image {
				t.Fatalf("module %q image %q, want %q %q", task.Module, task.ImageURL, tc.wantModule, tc.image)
			}
			if tc.wantModule != "" && task.ModuleSize != add.Size {
				t.Fatalf("module size %d, want %d", task.ModuleSize, add.Size)
			}
		})
	}
}

func TestService_DeleteArtifact(t *testing.T) {
	f := newService(t)
	ctx := testCtx(t)
	add := f.push(t, "vision", "1.2", wasmfixtures.Add())
	f.push(t, "vision", "latest", wasmfixtures.Add())
	f.push(t, "other", "1", wasmfixtures.Add())
	echo := f.push(t, "echo", "1", wasmfixtures.Echo())
	task, err := f.svc.CreateTask(ctx, events.TaskCreated{Name: "add", ImageURL: "vision:1.2"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Tags can go while another tag still points at the module.
	checkErr(t, f.svc.DeleteArtifact(ctx, "vision:1.2"), nil)
	checkErr(t, f.svc.DeleteArtifactName(ctx, "vision"), nil)
	if !f.stored(t, add.Digest) {
		t.Fatal("module deleted while other:1 points at it")
	}
	// The last tag of a module a task uses cannot.
	err = f.svc.DeleteArtifact(ctx, "other:1")
	checkErr(t, err, domain.ErrInvalidState)
	checkErr(t, f.svc.DeleteArtifact(ctx, add.Digest), domain.ErrInvalidState)
	if _, err := f.svc.GetArtifact(ctx, "other:1"); err != nil {
		t.Fatalf("refused delete removed the tag: %v", err)
	}

	checkErr(t, f.svc.DeleteTask(ctx, task.ID), nil)
	checkErr(t, f.svc.DeleteArtifact(ctx, add.Digest), nil)
	if f.stored(t, add.Digest) {
		t.Fatal("module still stored after its last tag went")
	}
	checkErr(t, f.svc.DeleteArtifact(ctx, "echo:1"), nil)
	if f.stored(t, echo.Digest) {
		t.Fatal("echo still stored")
	}
	if _, total := f.svc.ListArtifacts(0, 10); total != 0 {
		t.Fatalf("%d rows left", total)
	}

	for _, ref := range []string{"vision:1.2", "nope", add.Digest} {
		checkErr(t, f.svc.DeleteArtifact(ctx, ref), domain.ErrNotFound)
	}
	checkErr(t, f.svc.DeleteArtifactName(ctx, "nope"), domain.ErrNotFound)
	checkErr(t, f.svc.DeleteArtifact(ctx, "a/b"), domain.ErrInvalid)

	again := f.push(t, "vision", "1.2", wasmfixtures.Add())
	if again.Digest != add.Digest || !f.stored(t, add.Digest) {
		t.Fatalf("pushed again after delete: %+v", again)
	}
	if hist, err := f.svc.GetArtifact(ctx, "vision:1.2"); err != nil || len(hist.History) != 3 {
		t.Fatalf("history of a reused name: %+v %v", hist, err)
	}
}

// TestService_TagArtifact tags a module that is already stored, as an
// import does.
func TestService_TagArtifact(t *testing.T) {
	f := newService(t)
	ctx := testCtx(t)
	digest, size, err := f.modules.Put(ctx, bytes.NewReader(wasmfixtures.Add()))
	if err != nil {
		t.Fatal(err)
	}
	row, err := f.svc.TagArtifact(ctx, engine.TagArtifact{Name: "add", Tag: "v2", Digest: digest, Source: "localhost:5000/demo/add:v2", MediaType: "application/vnd.wasm.content.layer.v1+wasm"})
	if err != nil || row.Size != size || row.Source != "localhost:5000/demo/add:v2" {
		t.Fatalf("tag: %+v %v", row, err)
	}
	_, err = f.svc.TagArtifact(ctx, engine.TagArtifact{Name: "add", Tag: "v3", Digest: dA})
	checkErr(t, err, domain.ErrNotFound)
	_, err = f.svc.TagArtifact(ctx, engine.TagArtifact{Name: "add", Tag: "v3", Digest: digest, Size: size + 1})
	checkErr(t, err, domain.ErrInvalid)
}
