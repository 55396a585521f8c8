package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
)

func TestCLI_Proplets(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	if _, err := s.Handler.Device(ctx, engine.Announce{ID: "p1", Namespace: "lab"}); err != nil {
		t.Fatal(err)
	}
	s.Announce(t, "p2")

	table := jetprop(ctx, vars, "", "proplets", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "LAST CHANGE") {
		t.Fatalf("table:\n%s", table)
	}
	if f := strings.Fields(lines[1]); len(f) != 6 || f[0] != "p1" || f[1] != "announced" || f[2] != "true" || f[3] != "0" || f[4] != "lab" {
		t.Fatalf("row %q", lines[1])
	}
	var page httpapi.PropletList
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "proplets", "list", "--offset", "1", "-o", "json").ok(t)), &page); err != nil ||
		page.Total != 2 || len(page.Proplets) != 1 || page.Proplets[0].ID != "p2" {
		t.Fatalf("page %+v %v", page, err)
	}
	var p httpapi.Proplet
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "proplets", "get", "p1").ok(t)), &p); err != nil || p.Namespace != "lab" || !p.Alive {
		t.Fatalf("proplet %+v %v", p, err)
	}
	jetprop(ctx, vars, "", "proplets", "get", "p9").fails(t, exitError, "not found (HTTP 404)")

	history := jetprop(ctx, vars, "", "proplets", "history", "p1").ok(t)
	if lines := strings.Split(strings.TrimSpace(history), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "device.announced") || !strings.Contains(lines[1], "true") {
		t.Fatalf("history:\n%s", history)
	}
	if out := jetprop(ctx, vars, "", "proplets", "delete", "p2").ok(t); out != "p2 deleted\n" {
		t.Fatalf("delete: %q", out)
	}
	jetprop(ctx, vars, "", "proplets", "get", "p2").fails(t, exitError, "not found (HTTP 404)")
	jetprop(ctx, vars, "", "proplets", "delete", "p2").fails(t, exitError, "not found (HTTP 404)")
}

func TestCLI_EventsTail(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	id := strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", "add", "--image", "ghcr.io/jetprop/x:1").ok(t))
	s.Announce(t, "p1")

	out := jetprop(ctx, vars, "", "events", "tail", "--no-follow").ok(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("events:\n%s", out)
	}
	f := strings.Fields(lines[0])
	if len(f) != 5 || f[1] != "1" || f[2] != "task/"+id || f[3] != "task.created" || !strings.HasPrefix(f[4], `{"name":"add"`) {
		t.Fatalf("line %q", lines[0])
	}
	if !strings.Contains(lines[1], "dev/p1") || !strings.Contains(lines[1], "device.announced") {
		t.Fatalf("line %q", lines[1])
	}
	if out := jetprop(ctx, vars, "", "events", "tail", "--no-follow", "--from", "2").ok(t); out != "" {
		t.Fatalf("events from 2:\n%s", out)
	}

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var stdout, stderr syncBuffer
		done := make(chan int, 1)
		go func() { done <- jetpropTo(ctx, &stdout, &stderr, vars, "", "events", "tail") }()
		s.Announce(t, "p3")
		natstest.CheckFor(t, apitest.Timeout, func() error {
			if !strings.Contains(stdout.String(), "dev/p3") {
				return errors.New("no event of p3 yet:\n" + stdout.String())
			}
			return nil
		})
		cancel()
		if code := <-done; code != exitOK || stderr.String() != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr.String())
		}
	})
}
