package proplet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/workers/journal"
)

// errRestarted is the result error of a task that was running when the
// proplet died; it is reported when the proplet starts again.
var errRestarted = errors.New("interrupted: proplet restarted")

// legacyStoreDir is where earlier versions kept paho's file store.
const legacyStoreDir = "mqtt-store"

// openJournal opens the journal in DataDir (the MQTT session store and the
// accepted tasks), imports a legacy paho file store, and queues a failed
// result for every task a previous run accepted and did not finish.
func (p *Proplet) openJournal() error {
	j, err := journal.Open(p.cfg.DataDir, journal.WithOnError(func(err error) {
		p.log.Error("journal write failed", keyErr, err)
	}), journal.WithResultLimit(p.cfg.UnackedResults, journal.DefaultResultBytes))
	if err != nil {
		return fmt.Errorf("proplet: %w", err)
	}
	p.journal = j
	if st := j.Stats(); st.TornBytes > 0 || st.Corrupt > 0 {
		p.log.Warn("journal repaired", keyTorn, st.TornBytes, keyCorrupt, st.Corrupt, keyDropped, st.DroppedBytes)
	}
	p.droppedResults(j.DroppedAtOpen())
	if err := p.importLegacyStore(); err != nil {
		p.log.Warn("legacy mqtt store not imported", keyErr, err)
	}
	if err := p.reportInterrupted(); err != nil {
		j.Close()
		return err
	}
	return nil
}

func (p *Proplet) closeJournal() {
	if err := p.journal.Close(); err != nil {
		p.log.Error("journal close failed", keyErr, err)
	}
}

// reportInterrupted queues, in the session store, a failed result for each
// task the journal holds from a previous run, then clears the task. paho
// sends stored messages first thing when the session resumes. A crash in
// between reports the task twice, which the manager ignores (one result per
// task and attempt counts).
func (p *Proplet) reportInterrupted() error {
	p.interrupted = map[string]int{}
	topic, qos := p.topics.Topic(p.out(wire.SuffixResults)), p.resultQoS()
	for _, e := range p.journal.Interrupted() {
		b, err := json.Marshal(p.result(e.TaskID, e.Attempt, "", errRestarted))
		if err != nil {
			return fmt.Errorf("proplet: encode result: %w", err)
		}
		if p.acked(e.Attempt) {
			p.keepResult(e.TaskID, e.Attempt, b)
		}
		if err := p.journal.Store().Enqueue(topic, qos, b); err != nil {
			return fmt.Errorf("proplet: queue interrupted result: %w", err)
		}
		if err := p.journal.Clear(e); err != nil {
			return fmt.Errorf("proplet: %w", err)
		}
		p.interrupted[e.TaskID] = e.Attempt
		p.log.Warn("task interrupted by a restart, reporting it failed", keyTask, e.TaskID, keyAttempt, e.Attempt)
	}
	return nil
}

// importLegacyStore moves the unacknowledged outbound messages of the paho
// file store that earlier versions kept in DataDir/mqtt-store into the
// journal, then removes that store.
func (p *Proplet) importLegacyStore() error {
	dir := filepath.Join(p.cfg.DataDir, legacyStoreDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	old := paho.NewFileStore(dir)
	old.Open()
	before := p.journal.Stats().WriteErrors
	n := 0
	for _, key := range old.All() {
		if pkt := old.Get(key); pkt != nil && strings.HasPrefix(key, "o.") {
			p.journal.Store().Put(key, pkt)
			n++
		}
	}
	old.Close()
	if p.journal.Stats().WriteErrors != before {
		return errors.New("journal writes failed; the legacy store is kept")
	}
	p.log.Info("legacy mqtt store imported", keyMessages, n)
	return os.RemoveAll(dir)
}

// journalStart describes a task for its journal entry: the start without
// its inline module and stdin, which may be large, and without its env,
// which may hold the values of secrets (the journal is a plain file).
func journalStart(req wire.StartRequest) []byte {
	req.File, req.Stdin, req.Env = nil, nil, nil
	b, _ := json.Marshal(req) // a decoded StartRequest always encodes
	return b
}
