package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// decoder decodes one payload type, as its Decode function does.
type decoder func([]byte) (any, error)

func dec[T any](f func([]byte) (T, error)) decoder {
	return func(b []byte) (any, error) { return f(b) }
}

// plain decodes with wire.Decode only, for payloads without a decoder of their own.
func plain[T any]() decoder {
	return func(b []byte) (any, error) {
		var v T
		err := wire.Decode(b, &v)
		return v, err
	}
}

var (
	decStart          = dec(wire.DecodeStart)
	decStop           = dec(wire.DecodeStop)
	decInvoke         = dec(wire.DecodeInvoke)
	decDiscovery      = dec(wire.DecodeDiscovery)
	decAlive          = dec(wire.DecodeAlive)
	decResult         = dec(wire.DecodeResult)
	decResultAck      = dec(wire.DecodeResultAck)
	decInvokeResult   = dec(wire.DecodeInvokeResult)
	decRegistry       = plain[wire.ModuleRequest]()
	decChunk          = dec(wire.DecodeChunk)
	decTaskMetrics    = dec(wire.DecodeTaskMetrics)
	decPropletMetrics = dec(wire.DecodePropletMetrics)
)

// The wire names each payload may carry when jetprop encodes it
// (Propeller's protocol, plus jetprop's own extensions).
var (
	startNames = []string{"id", "name", "state", "image_url", "file", "inputs", "cli_args", "env", "daemon",
		"latent", "broadcast", "proplet_id", "parent_results", "attempt", "timeout_ms", "memory_mib", "stdin"}
	stopNames      = []string{"id", "broadcast", "proplet_id"}
	invokeNames    = []string{"id", "invocation_id", "inputs", "env", "proplet_id", "broadcast", "function", "stdin"}
	discoveryNames = []string{"proplet_id", "namespace", "metadata"}
	metadataNames  = []string{"description", "tags", "location", "ip", "environment", "os", "hostname",
		"cpu_arch", "total_memory_bytes", "proplet_version", "wasm_runtime"}
	aliveNames        = []string{"proplet_id", "status", "namespace"}
	resultNames       = []string{"task_id", "proplet_id", "results", "error", "attempt"}
	invokeResultNames = []string{"task_id", "invocation_id", "proplet_id", "results", "error"}
	chunkNames        = []string{"app_name", "chunk_idx", "total_chunks", "data"}
	taskMetricsNames  = []string{"task_id", "proplet_id", "metrics", "aggregated", "timestamp"}
	processNames      = []string{"cpu_percent", "memory_bytes", "memory_percent", "disk_read_bytes", "disk_write_bytes",
		"uptime_seconds", "thread_count", "file_descriptor_count"}
	aggregatedNames = []string{"avg_cpu_usage", "max_cpu_usage", "avg_memory_usage", "max_memory_usage",
		"total_disk_read", "total_disk_write", "sample_count"}
	propletMetricsNames = []string{"proplet_id", "namespace", "timestamp", "cpu_metrics", "memory_metrics"}
	cpuNames            = []string{"user_seconds", "system_seconds", "percent"}
	memoryNames         = []string{"rss_bytes", "heap_alloc_bytes", "heap_sys_bytes", "heap_inuse_bytes",
		"container_usage_bytes", "container_limit_bytes"}
	taskMetricsPaths    = map[string][]string{"": taskMetricsNames, "metrics": processNames, "aggregated": aggregatedNames}
	propletMetricsPaths = map[string][]string{"": propletMetricsNames, "cpu_metrics": cpuNames, "memory_metrics": memoryNames}
)

const (
	taskUUID    = "5c3d7a8e-1f2b-4c6d-9e0a-7b8c9d0e1f2a"
	propletUUID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	image       = "docker.io/mrstevenyaga/add.wasm:latest"
)

var (
	addWasm  = []byte("\x00asm\x01\x00\x00\x00\x01\x07\x01`\x02\x7f\x7f\x01\x7f\x03\x02\x01\x00\x07\x07\x01\x03add\x00\x00\n\t\x01\x07\x00 \x00 \x01j\x0b")
	wasmHead = []byte("\x00asm\x01\x00\x00\x00")
	ts       = time.Date(2026, 11, 21, 12, 0, 0, 123456789, time.UTC)
)

type goldenTest struct {
	file    string
	decode  decoder
	want    any
	names   map[string][]string // object path ("" top level) -> wire names allowed there
	ignored []string            // input fields jetprop does not model
}

var goldens = []goldenTest{
	{
		file: "start_file.json", decode: decStart, names: map[string][]string{"": startNames},
		want: wire.StartRequest{ID: taskUUID, Name: "add", State: 1, File: addWasm, Inputs: wire.Strings{"3", "4.5", "-7"}, PropletID: propletUUID},
	},
	{
		file: "start_image.json", decode: decStart, names: map[string][]string{"": startNames},
		ignored: []string{"encrypted", "kbs_resource_path", "monitoring_profile"},
		want: wire.StartRequest{
			ID: "0f0b7c9e-2d5a-4a55-9a57-3f1c2a4b5c6d", Name: "_start", ImageURL: "docker.io/mrstevenyaga/hello-wasi:latest",
			Inputs: wire.Strings{"10", "20"}, CLIArgs: []string{"--dir", "/tmp"}, Env: map[string]string{"RUST_LOG": "info", "GREETING": "hi"},
			Daemon: true, Broadcast: true, ParentResults: json.RawMessage(`{"t0":"42"}`),
		},
	},
	{
		file: "start_jetprop.json", decode: decStart, names: map[string][]string{"": startNames},
		want: wire.StartRequest{
			ID: "t-01", Name: "add", State: 1, File: wasmHead, Inputs: wire.Strings{"1", "2"}, PropletID: "pi-1",
			Attempt: 2, TimeoutMS: 5000, MemoryMiB: 16, Stdin: []byte("hello"),
		},
	},
	{
		file: "stop.json", decode: decStop, names: map[string][]string{"": stopNames},
		want: wire.StopRequest{ID: taskUUID, PropletID: propletUUID},
	},
	{
		file: "invoke.json", decode: decInvoke, names: map[string][]string{"": invokeNames},
		want: wire.InvokeRequest{ID: taskUUID, InvocationID: "inv-7", Inputs: wire.Strings{"5", "6"}, Env: map[string]string{"MODE": "fast"}, PropletID: propletUUID},
	},
	{
		file: "discovery.json", decode: decDiscovery, names: map[string][]string{"": discoveryNames, "metadata": metadataNames},
		want: wire.Discovery{PropletID: propletUUID, Namespace: "default", Metadata: wire.Metadata{
			Description: "greenhouse sensor hub", Tags: []string{"arm64", "sensors"}, Location: "greenhouse-2", IP: "10.0.0.42",
			Environment: "docker", OS: "linux", Hostname: "pi-42", CPUArch: "aarch64", TotalMemoryBytes: 8 << 30,
			PropletVersion: "0.5.0", WasmRuntime: "wasmtime",
		}},
	},
	{
		file: "alive.json", decode: decAlive, names: map[string][]string{"": aliveNames},
		want: wire.Alive{PropletID: propletUUID, Status: wire.StatusAlive, Namespace: "default"},
	},
	{
		file: "last_will.json", decode: decAlive, names: map[string][]string{"": aliveNames},
		want: wire.Alive{PropletID: propletUUID, Status: wire.StatusOffline},
	},
	{
		file: "result_string.json", decode: decResult, names: map[string][]string{"": resultNames},
		want: wire.Result{TaskID: taskUUID, PropletID: propletUUID, Results: json.RawMessage(`"7"`)},
	},
	{
		file: "result_object.json", decode: decResult, names: map[string][]string{"": resultNames},
		want: wire.Result{TaskID: "fl-round-3", PropletID: propletUUID,
			Results: json.RawMessage(`{"round":3,"weights":[0.25,-1.5,3],"samples":120,"model":"lr"}`)},
	},
	{
		file: "result_error.json", decode: decResult, names: map[string][]string{"": resultNames},
		want: wire.Result{TaskID: taskUUID, PropletID: propletUUID, Results: json.RawMessage(`null`), Error: "wasm trap: integer divide by zero"},
	},
	{
		file: "invoke_result.json", decode: decInvokeResult, names: map[string][]string{"": invokeResultNames},
		want: wire.InvokeResult{TaskID: taskUUID, InvocationID: "inv-7", PropletID: propletUUID, Results: json.RawMessage(`"11"`)},
	},
	{
		// Propeller's Rust proplet (proplet/src/service.rs, handle_invoke_command)
		// answers a failed invocation with results "" and the error's text.
		file: "invoke_result_error.json", decode: decInvokeResult, names: map[string][]string{"": invokeResultNames},
		want: wire.InvokeResult{TaskID: taskUUID, InvocationID: "0d6f1c1e-8a47-4f7e-9d55-2b1e3c4d5e6f", PropletID: propletUUID,
			Results: json.RawMessage(`""`), Error: "task 5c3d7a8e-1f2b-4c6d-9e0a-7b8c9d0e1f2a has not been precompiled; deploy it as a latent task first"},
	},
	{
		file: "registry_request.json", decode: decRegistry, names: map[string][]string{"": {"app_name"}},
		want: wire.ModuleRequest{AppName: image},
	},
	{
		file: "chunk.json", decode: decChunk, names: map[string][]string{"": chunkNames},
		want: wire.Chunk{AppName: image, ChunkIdx: 1, TotalChunks: 3, Data: wasmHead},
	},
	{
		file: "task_metrics_rfc3339.json", decode: decTaskMetrics, names: taskMetricsPaths,
		want: wire.TaskMetrics{TaskID: taskUUID, PropletID: propletUUID, Timestamp: wire.Timestamp{Time: ts},
			Metrics: wire.ProcessMetrics{CPUPercent: 12.5, MemoryBytes: 1048576, MemoryPercent: 0.4, DiskWriteBytes: 4096,
				ThreadCount: 3, FileDescriptorCount: 9, UptimeSeconds: 42}},
	},
	{
		file: "task_metrics_rust.json", decode: decTaskMetrics, names: taskMetricsPaths,
		want: wire.TaskMetrics{TaskID: taskUUID, PropletID: propletUUID, Timestamp: wire.Timestamp{Time: ts},
			Metrics: wire.ProcessMetrics{CPUPercent: 3.25, MemoryBytes: 2097152, MemoryPercent: 0.05, DiskWriteBytes: 4096,
				UptimeSeconds: 20, ThreadCount: 1, FileDescriptorCount: 7},
			Aggregated: &wire.AggregatedMetrics{AvgCPUUsage: 2.5, MaxCPUUsage: 3.25, AvgMemoryUsage: 1572864, MaxMemoryUsage: 2097152,
				TotalDiskWrite: 8192, SampleCount: 2}},
	},
	{
		file: "task_metrics_embedded.json", decode: decTaskMetrics, names: taskMetricsPaths,
		want: wire.TaskMetrics{TaskID: taskUUID, PropletID: "esp32-c6-01", Timestamp: wire.Timestamp{UptimeMS: 987654},
			Metrics:    wire.ProcessMetrics{MemoryBytes: 65536, MemoryPercent: 12.5, UptimeSeconds: 3, ThreadCount: 1},
			Aggregated: &wire.AggregatedMetrics{AvgMemoryUsage: 65536, MaxMemoryUsage: 65536, SampleCount: 1}},
	},
	{
		file: "proplet_metrics_uptime.json", decode: decPropletMetrics, names: propletMetricsPaths,
		ignored: []string{"heap_free_bytes", "heap_max_alloc_bytes"},
		want: wire.PropletMetrics{PropletID: "esp32-c6-01", Namespace: "embedded", Timestamp: wire.Timestamp{UptimeMS: 987654},
			CPU:    wire.CPUMetrics{Percent: 41.5},
			Memory: wire.MemoryMetrics{HeapAllocBytes: 182272, HeapSysBytes: 262144, HeapInuseBytes: 182272}},
	},
	{
		file: "proplet_metrics_rust.json", decode: decPropletMetrics, names: propletMetricsPaths,
		want: wire.PropletMetrics{PropletID: propletUUID, Namespace: "default", Timestamp: wire.Timestamp{Time: ts.Truncate(time.Second)},
			CPU:    wire.CPUMetrics{UserSeconds: 12.34, SystemSeconds: 1.5, Percent: 7.5},
			Memory: wire.MemoryMetrics{RSSBytes: 33554432, ContainerUsageBytes: ptr[wire.Int](50331648), ContainerLimitBytes: ptr[wire.Int](536870912)}},
	},
}

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every payload of Propeller's protocol decodes to the expected value and encodes
// back under the same wire names; the re-encoded form decodes to the same
// value again.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) != len(goldens) {
		t.Errorf("%d golden files, %d golden tests: every file needs a test", len(files), len(goldens))
	}
	for _, g := range goldens {
		t.Run(strings.TrimSuffix(g.file, ".json"), func(t *testing.T) {
			in := readGolden(t, g.file)
			got, err := g.decode(in)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, g.want) {
				t.Fatalf("decoded\n got %#v\nwant %#v", got, g.want)
			}
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			checkNames(t, "", in, out, g.names, g.ignored)
			back, err := g.decode(out)
			if err != nil {
				t.Fatalf("decode of the re-encoded %s: %v", out, err)
			}
			if !reflect.DeepEqual(back, got) {
				t.Fatalf("re-encoded %s decodes to\n %#v\nwant %#v", out, back, got)
			}
		})
	}
}

// checkNames compares the fields of the JSON objects in and out at path:
// out holds only allowed names, and every field in sets to a non-zero value
// is in out under the same name.
func checkNames(t *testing.T, path string, in, out []byte, names map[string][]string, ignored []string) {
	t.Helper()
	var inObj, outObj map[string]json.RawMessage
	if err := json.Unmarshal(in, &inObj); err != nil {
		t.Fatalf("%s: input: %v", path, err)
	}
	if err := json.Unmarshal(out, &outObj); err != nil {
		t.Fatalf("%s: output %s: %v", path, out, err)
	}
	allowed := names[path]
	for k := range outObj {
		if !slices.Contains(allowed, k) {
			t.Errorf("re-encoded %q has field %q, not a wire name there", path, k)
		}
	}
	for k, v := range inObj {
		switch {
		case slices.Contains(ignored, k):
		case !slices.Contains(allowed, k):
			t.Errorf("golden %q field %q is neither a wire name nor ignored", path, k)
		case outObj[k] == nil && !zeroJSON(v):
			t.Errorf("golden %q field %q = %s is lost on re-encoding: %s", path, k, v, out)
		}
		sub := strings.TrimPrefix(path+"."+k, ".")
		if _, nested := names[sub]; nested && !zeroJSON(v) {
			checkNames(t, sub, v, outObj[k], names, ignored)
		}
	}
}

func zeroJSON(v json.RawMessage) bool {
	switch string(bytes.TrimSpace(v)) {
	case "null", "false", "0", `""`, "[]", "{}":
		return true
	}
	return false
}

// What jetprop sends to a proplet: the exact bytes of a start and a stop.
func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{
			name: "start",
			v:    wire.StartRequest{ID: "t1", Name: "add", File: wasmHead, Inputs: wire.Strings{"1", "2"}, PropletID: "pi-1"},
			want: `{"id":"t1","name":"add","state":0,"file":"AGFzbQEAAAA=","inputs":["1","2"],"cli_args":null,"daemon":false,"proplet_id":"pi-1"}`,
		},
		{
			name: "start by image",
			v:    wire.StartRequest{ID: "t1", Name: "main", ImageURL: image, Inputs: wire.Strings{}, CLIArgs: []string{"-v"}, Env: map[string]string{"A": "1"}, Daemon: true, Attempt: 3},
			want: `{"id":"t1","name":"main","state":0,"image_url":"` + image + `","inputs":[],"cli_args":["-v"],"env":{"A":"1"},"daemon":true,"attempt":3}`,
		},
		{name: "stop", v: wire.StopRequest{ID: "t1", PropletID: "pi-1"}, want: `{"id":"t1","proplet_id":"pi-1"}`},
		{name: "chunk", v: wire.Chunk{AppName: image, ChunkIdx: 0, TotalChunks: 1, Data: wasmHead},
			want: `{"app_name":"` + image + `","chunk_idx":0,"total_chunks":1,"data":"AGFzbQEAAAA="}`},
		{name: "result", v: wire.Result{TaskID: "t1", PropletID: "pi-1", Results: wire.StringResult("3")},
			want: `{"task_id":"t1","proplet_id":"pi-1","results":"3","error":""}`},
		{name: "failure", v: wire.Result{TaskID: "t1", PropletID: "pi-1", Error: "trap", Attempt: 2},
			want: `{"task_id":"t1","proplet_id":"pi-1","results":null,"error":"trap","attempt":2}`},
		{name: "uptime timestamp", v: wire.Timestamp{UptimeMS: 5}, want: `5`},
		{name: "zone timestamp in UTC", v: wire.Timestamp{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))}, want: `"2026-01-02T02:04:05Z"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

// Accepted variants of what Propeller's components send.
func TestDecode_Lenient(t *testing.T) {
	tests := []struct {
		name   string
		decode decoder
		in     string
		want   any
	}{
		{"start inputs mixed", decStart, `{"id":"t","name":"f","file":"AA==","inputs":["1",2,true,-0.5,1e3,false]}`,
			wire.StartRequest{ID: "t", Name: "f", File: []byte{0}, Inputs: wire.Strings{"1", "2", "true", "-0.5", "1e3", "false"}}},
		{"start inputs null", decStart, `{"id":"t","name":"f","image_url":"x","inputs":null}`,
			wire.StartRequest{ID: "t", Name: "f", ImageURL: "x"}},
		{"start inputs empty", decStart, `{"id":"t","name":"f","image_url":"x","inputs":[]}`,
			wire.StartRequest{ID: "t", Name: "f", ImageURL: "x", Inputs: wire.Strings{}}},
		{"start unknown fields", decStart, `{"id":"t","name":"f","image_url":"x","hal_storage_path":"/hal","priority":3}`,
			wire.StartRequest{ID: "t", Name: "f", ImageURL: "x"}},
		{"chunk numbers as strings", decChunk, `{"app_name":"a","chunk_idx":"2","total_chunks":"3","data":""}`,
			wire.Chunk{AppName: "a", ChunkIdx: 2, TotalChunks: 3, Data: []byte{}}},
		{"chunk numbers as floats", decChunk, `{"app_name":"a","chunk_idx":2.0,"total_chunks":3e0}`,
			wire.Chunk{AppName: "a", ChunkIdx: 2, TotalChunks: 3}},
		{"discovery memory as string", decDiscovery, `{"proplet_id":"p","metadata":{"total_memory_bytes":"1024"}}`,
			wire.Discovery{PropletID: "p", Metadata: wire.Metadata{TotalMemoryBytes: 1024}}},
		{"discovery without metadata", decDiscovery, `{"proplet_id":"p"}`, wire.Discovery{PropletID: "p"}},
		{"result error empty", decResult, `{"task_id":"t","results":"1","error":""}`,
			wire.Result{TaskID: "t", Results: json.RawMessage(`"1"`)}},
		{"result error absent", decResult, `{"task_id":"t","results":1}`,
			wire.Result{TaskID: "t", Results: json.RawMessage(`1`)}},
		{"result error not a string", decResult, `{"task_id":"t","error":{"code":5}}`,
			wire.Result{TaskID: "t", Error: `{"code":5}`}},
		{"result attempt", decResult, `{"task_id":"t","results":"1","error":null,"attempt":2}`,
			wire.Result{TaskID: "t", Results: json.RawMessage(`"1"`), Attempt: 2}},
		{"metrics without timestamp", decTaskMetrics, `{"task_id":"t"}`, wire.TaskMetrics{TaskID: "t"}},
		{"metrics timestamp null", decTaskMetrics, `{"task_id":"t","timestamp":null}`, wire.TaskMetrics{TaskID: "t"}},
		{"metrics rust without nanos", decPropletMetrics, `{"proplet_id":"p","timestamp":{"secs_since_epoch":1795262400}}`,
			wire.PropletMetrics{PropletID: "p", Timestamp: wire.Timestamp{Time: ts.Truncate(time.Second)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.decode([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestDecode_Bad(t *testing.T) {
	tests := []struct {
		name   string
		decode decoder
		in     string
	}{
		{"start garbage", decStart, `start please`},
		{"start empty", decStart, ``},
		{"start null", decStart, `null`},
		{"start array", decStart, `[{"id":"t"}]`},
		{"start truncated", decStart, `{"id":"t","name":"f","file":"AA=="`},
		{"start trailing garbage", decStart, `{"id":"t","name":"f","file":"AA=="} x`},
		{"start without id", decStart, `{"name":"f","file":"AA=="}`},
		{"start without name", decStart, `{"id":"t","file":"AA=="}`},
		{"start without module", decStart, `{"id":"t","name":"f"}`},
		{"start empty file", decStart, `{"id":"t","name":"f","file":""}`},
		{"start id a number", decStart, `{"id":5,"name":"f","file":"AA=="}`},
		{"start file not base64", decStart, `{"id":"t","name":"f","file":"%%%"}`},
		{"start inputs a string", decStart, `{"id":"t","name":"f","file":"AA==","inputs":"1 2"}`},
		{"start inputs with an object", decStart, `{"id":"t","name":"f","file":"AA==","inputs":[{}]}`},
		{"start inputs with null", decStart, `{"id":"t","name":"f","file":"AA==","inputs":[null]}`},
		{"start inputs nested", decStart, `{"id":"t","name":"f","file":"AA==","inputs":[[1]]}`},
		{"start state a string", decStart, `{"id":"t","name":"f","file":"AA==","state":"running"}`},
		{"start env not strings", decStart, `{"id":"t","name":"f","file":"AA==","env":{"A":1}}`},
		{"start daemon a string", decStart, `{"id":"t","name":"f","file":"AA==","daemon":"yes"}`},
		{"stop without id", decStop, `{"proplet_id":"p"}`},
		{"stop id a number", decStop, `{"id":7}`},
		{"stop garbage", decStop, `}{`},
		{"discovery without proplet_id", decDiscovery, `{"namespace":"n","metadata":{}}`},
		{"discovery metadata a string", decDiscovery, `{"proplet_id":"p","metadata":"pi"}`},
		{"discovery tags a string", decDiscovery, `{"proplet_id":"p","metadata":{"tags":"a,b"}}`},
		{"discovery memory not a number", decDiscovery, `{"proplet_id":"p","metadata":{"total_memory_bytes":"lots"}}`},
		{"discovery memory fractional", decDiscovery, `{"proplet_id":"p","metadata":{"total_memory_bytes":1.5}}`},
		{"discovery memory overflows", decDiscovery, `{"proplet_id":"p","metadata":{"total_memory_bytes":1e30}}`},
		{"alive without proplet_id", decAlive, `{"status":"alive"}`},
		{"alive without status", decAlive, `{"proplet_id":"p"}`},
		{"alive unknown status", decAlive, `{"proplet_id":"p","status":"zombie"}`},
		{"alive status a bool", decAlive, `{"proplet_id":"p","status":true}`},
		{"last will without proplet_id", decAlive, `{"status":"offline"}`},
		{"result without task_id", decResult, `{"proplet_id":"p","results":"1"}`},
		{"result task_id a number", decResult, `{"task_id":1}`},
		{"result garbage", decResult, `results: 1`},
		{"chunk without app_name", decChunk, `{"chunk_idx":0,"total_chunks":1,"data":"AA=="}`},
		{"chunk zero total", decChunk, `{"app_name":"a","chunk_idx":0,"total_chunks":0}`},
		{"chunk negative index", decChunk, `{"app_name":"a","chunk_idx":-1,"total_chunks":2}`},
		{"chunk index past the end", decChunk, `{"app_name":"a","chunk_idx":2,"total_chunks":2}`},
		{"chunk index fractional", decChunk, `{"app_name":"a","chunk_idx":0.5,"total_chunks":2}`},
		{"chunk index a word", decChunk, `{"app_name":"a","chunk_idx":"first","total_chunks":2}`},
		{"chunk index a bool", decChunk, `{"app_name":"a","chunk_idx":true,"total_chunks":2}`},
		{"chunk data not base64", decChunk, `{"app_name":"a","chunk_idx":0,"total_chunks":1,"data":"!!"}`},
		{"metrics garbage", decTaskMetrics, `{{`},
		{"metrics timestamp a word", decTaskMetrics, `{"timestamp":"yesterday"}`},
		{"metrics timestamp not RFC 3339", decTaskMetrics, `{"timestamp":"2026-11-21 12:00:00"}`},
		{"metrics timestamp without secs", decTaskMetrics, `{"timestamp":{"nanos_since_epoch":5}}`},
		{"metrics timestamp secs a string", decTaskMetrics, `{"timestamp":{"secs_since_epoch":"5"}}`},
		{"metrics timestamp a bool", decPropletMetrics, `{"timestamp":true}`},
		{"proplet metrics cpu not an object", decPropletMetrics, `{"proplet_id":"p","cpu_metrics":7.5}`},
		{"proplet metrics rss fractional", decPropletMetrics, `{"proplet_id":"p","memory_metrics":{"rss_bytes":1.5}}`},
		{"task metrics sample count a word", decTaskMetrics, `{"task_id":"t","aggregated":{"sample_count":"many"}}`},
		{"task metrics the old flat shape, metrics an array", decTaskMetrics, `{"task_id":"t","metrics":[1,2]}`},
		{"metrics timestamp an array", decPropletMetrics, `{"timestamp":[1,2]}`},
		{"metrics timestamp fractional ms", decPropletMetrics, `{"timestamp":1.5}`},
		{"metrics uptime as string", decPropletMetrics, `{"proplet_id":"p","timestamp":"7"}`},
		{"invoke inputs an object", decInvoke, `{"id":"t","inputs":{"a":1}}`},
		{"registry request app_name a number", decRegistry, `{"app_name":1}`},
		{"invoke result garbage", decInvokeResult, `nope`},
		{"invoke without id", decInvoke, `{"invocation_id":"i","inputs":[]}`},
		{"invoke result without invocation_id", decInvokeResult, `{"task_id":"t","results":"1"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.decode([]byte(tc.in))
			if !errors.Is(err, wire.ErrInvalid) {
				t.Fatalf("decode(%s) = %#v, %v; want ErrInvalid", tc.in, v, err)
			}
		})
	}
}

func TestDecode_TooLarge(t *testing.T) {
	big := make([]byte, wire.MaxMessage+1)
	var v any
	if err := wire.Decode(big, &v); !errors.Is(err, wire.ErrInvalid) {
		t.Fatalf("Decode of %d bytes = %v, want ErrInvalid", len(big), err)
	}
}

func TestResult_Text(t *testing.T) {
	tests := []struct {
		name    string
		results string
		err     wire.OptString
		text    string
		failed  bool
	}{
		{"string", `"42"`, "", "42", false},
		{"escaped string", `"a\nb\u00e9"`, "", "a\nbé", false},
		{"number", `42`, "", "42", false},
		{"object", `{"w":[1]}`, "", `{"w":[1]}`, false},
		{"null", `null`, "boom", "", true},
		{"absent", ``, "", "", false},
		{"padded", ` "x" `, "", "x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := wire.Result{Results: json.RawMessage(tc.results), Error: tc.err}
			if got := r.Text(); got != tc.text {
				t.Errorf("Text() = %q, want %q", got, tc.text)
			}
			if got := r.Failed(); got != tc.failed {
				t.Errorf("Failed() = %v, want %v", got, tc.failed)
			}
		})
	}
}

func TestStringResult(t *testing.T) {
	for _, s := range []string{"", "3", "a \"quoted\" <tag>\n", "é"} {
		r := wire.Result{Results: wire.StringResult(s)}
		if got := r.Text(); got != s {
			t.Errorf("Text(StringResult(%q)) = %q", s, got)
		}
	}
}

// An invoke result over the result bound is refused before it is parsed.
func TestDecodeInvokeResult_TooLarge(t *testing.T) {
	big := make([]byte, wire.MaxResultSize+1)
	if _, err := wire.DecodeInvokeResult(big); !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("DecodeInvokeResult of %d bytes = %v, want ErrTooLarge", len(big), err)
	}
}

func ptr[T any](v T) *T { return &v }
