package main

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/natstest"
)

// TestCLI_Invoke: jetprop invoke against a real server with a local
// proplet: a catalog name:tag goes to the function route (deployed on the
// first call), anything else is a task id; failures exit non-zero.
func TestCLI_Invoke(t *testing.T) {
	a, err := app.Start(t.Context(), app.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSPort: -1, MQTTPort: -1, Proplets: 1,
		Tenant: "t1", Channel: "c1", Replicas: 1, MaxModule: 1 << 20, Liveness: 30 * time.Second, LogLevel: "warn",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ctx, vars := t.Context(), map[string]string{"JETPROP_SERVER": a.HTTPURL()}
	api := client.New(a.HTTPURL(), nil)
	natstest.CheckFor(t, 15*time.Second, func() error { // the local proplet announced itself
		page, err := api.ListProplets(ctx, 0, 10)
		if err != nil {
			return err
		}
		if len(page.Proplets) != 1 || !page.Proplets[0].Alive {
			return fmt.Errorf("proplets %+v, want the local one alive", page.Proplets)
		}
		return nil
	})
	jetprop(ctx, vars, "", "artifact", "push", writeModule(t), "--name", "calc:1").ok(t)

	if out := jetprop(ctx, vars, "", "invoke", "calc:1", "add", "10", "20").ok(t); out != "30\n" {
		t.Fatalf("invoke printed %q", out)
	}
	if out := jetprop(ctx, vars, "", "invoke", "calc:1", "add", "-5", "2", "--timeout", "5s").ok(t); out != "-3\n" {
		t.Fatalf("second invoke printed %q", out)
	}
	jetprop(ctx, vars, "", "invoke", "calc:1", "add", "x", "1").fails(t, exitError, "not a valid i32")
	jetprop(ctx, vars, "", "invoke", "nosuch:9", "add").fails(t, exitError, "HTTP 404")
	jetprop(ctx, vars, "", "invoke", "notatask", "add").fails(t, exitError, "HTTP 404")
	jetprop(ctx, vars, "", "invoke", "calc:1", "add", "--timeout", "2h").fails(t, exitError, "--timeout 2h0m0s")
}
