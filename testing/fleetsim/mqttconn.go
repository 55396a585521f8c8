package fleetsim

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Timings of the connection that Config does not set.
const (
	pingTimeout  = 10 * time.Second // for a PINGRESP, as paho's default
	writeTimeout = 10 * time.Second // of one packet; a stuck write closes the connection
	readBuffer   = 2048             // bytes per connection: one read syscall per burst
)

// Errors of mqttClient.
var (
	errNotConnected = errors.New("fleetsim: not connected")
	errConnLost     = errors.New("fleetsim: connection lost")
	errClosed       = errors.New("fleetsim: device closed")
	errTimeout      = errors.New("fleetsim: no answer from the broker in time")
	errIDsExhausted = errors.New("fleetsim: 65,535 packets in flight")
)

// ConnackError is a CONNACK that refused the connection.
type ConnackError struct{ Code byte }

func (e *ConnackError) Error() string {
	return fmt.Sprintf("fleetsim: CONNACK %d: %s", e.Code, packets.ConnackReturnCodes[e.Code])
}

// Unwrap returns paho's error for the code (e.g. packets.ErrorRefusedNotAuthorised).
func (e *ConnackError) Unwrap() error { return packets.ConnErrors[e.Code] }

// clientConfig is what a device sends in its CONNECT.
type clientConfig struct {
	url            string // tcp://, mqtt://, or ssl://, tls://, mqtts:// with the system's CAs
	id, username   string
	password       string
	keepAlive      time.Duration
	connectTimeout time.Duration
	willTopic      string
	will           []byte // at QoS 1, not retained
	cleanSession   bool
}

// ackFunc is called once with the broker's acknowledgement (PUBACK,
// SUBACK) or why there is none (errTimeout, errConnLost).
type ackFunc func(ack packets.ControlPacket, err error)

// waiter is a QoS 1 publish or a subscribe the broker has not
// acknowledged yet. A publish stays until its PUBACK, past its timeout
// too, and is sent again with DUP on every reconnect (the broker keeps
// the session); a subscribe is dropped with its connection.
type waiter struct {
	pkt      packets.ControlPacket
	seq      uint64 // sending order, kept on a resend
	written  bool   // went out on some connection (a resend carries DUP)
	deadline time.Time
	done     ackFunc // nil once called
}

// mqttClient is a device's MQTT 3.1.1 connection and session: the
// simulator's thin client on paho's packet codec. Callers write under
// its mutex straight into the connection; the one goroutine that reads
// (serve) handles every packet inline; a fleet-wide scheduler drives
// keepalive and expire.
type mqttClient struct {
	cfg clientConfig

	mu       sync.Mutex
	conn     net.Conn // nil while disconnected
	closed   bool     // by close: no connection any more
	lastSend time.Time
	pingSent time.Time // of the PINGREQ without PINGRESP yet; zero if none
	nextID   uint16
	seq      uint64
	inflight map[uint16]*waiter
}

func newMQTTClient(cfg clientConfig) *mqttClient { return &mqttClient{cfg: cfg} }

// connect dials the broker and exchanges CONNECT and CONNACK within the
// connect timeout, then sends again what the last connection left
// unacknowledged. The caller serves the returned reader.
func (c *mqttClient) connect(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.connectTimeout)
	defer cancel()
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	br, err := c.handshake(ctx, nc)
	if err == nil {
		err = c.attach(nc)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, br, nil
}

func (c *mqttClient) dial(ctx context.Context) (net.Conn, error) {
	u, err := url.Parse(c.cfg.url)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: broker URL: %w", err)
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		var d net.Dialer
		return d.DialContext(ctx, "tcp", u.Host)
	case "ssl", "tls", "mqtts":
		d := tls.Dialer{Config: &tls.Config{ServerName: u.Hostname()}}
		return d.DialContext(ctx, "tcp", u.Host)
	}
	return nil, fmt.Errorf("fleetsim: broker URL %q: want tcp://, mqtt://, ssl://, tls:// or mqtts://", c.cfg.url)
}

// handshake sends CONNECT and reads CONNACK, within ctx.
func (c *mqttClient) handshake(ctx context.Context, nc net.Conn) (*bufio.Reader, error) {
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if err := c.connectPacket().Write(nc); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(nc, readBuffer)
	p, err := packets.ReadPacket(br)
	if err != nil {
		return nil, err
	}
	ack, ok := p.(*packets.ConnackPacket)
	switch {
	case !ok:
		return nil, fmt.Errorf("fleetsim: %s instead of CONNACK", p)
	case ack.ReturnCode != packets.Accepted:
		return nil, &ConnackError{Code: ack.ReturnCode}
	}
	return br, nc.SetDeadline(time.Time{})
}

func (c *mqttClient) connectPacket() *packets.ConnectPacket {
	p := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	p.ProtocolName, p.ProtocolVersion = "MQTT", 4
	p.ClientIdentifier, p.CleanSession = c.cfg.id, c.cfg.cleanSession
	p.Keepalive = uint16(c.cfg.keepAlive / time.Second)
	p.WillFlag, p.WillTopic, p.WillMessage, p.WillQos = c.cfg.willTopic != "", c.cfg.willTopic, c.cfg.will, 1
	if c.cfg.username != "" { // as paho: no password without a user name
		p.UsernameFlag, p.Username = true, c.cfg.username
		p.PasswordFlag, p.Password = c.cfg.password != "", []byte(c.cfg.password)
	}
	return p
}

// attach makes nc the connection and sends the unacknowledged publishes
// again, in their order. It fails once close was called.
func (c *mqttClient) attach(nc net.Conn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	c.conn, c.lastSend, c.pingSent = nc, time.Now(), time.Time{}
	for _, w := range c.pendingLocked() {
		p := w.pkt.(*packets.PublishPacket)
		p.Dup = w.written
		if c.writeLocked(p) != nil {
			return nil // the reader finds the connection closed
		}
		w.written = true
	}
	return nil
}

// pendingLocked are the publishes in flight, in sending order.
func (c *mqttClient) pendingLocked() []*waiter {
	var out []*waiter
	for _, w := range c.inflight {
		if _, ok := w.pkt.(*packets.PublishPacket); ok {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b *waiter) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// writeLocked writes one packet (one write syscall); a failed write
// closes the connection, which its reader then reports.
func (c *mqttClient) writeLocked(p packets.ControlPacket) error {
	if c.conn == nil {
		return errNotConnected
	}
	now := time.Now()
	_ = c.conn.SetWriteDeadline(now.Add(writeTimeout))
	if err := p.Write(c.conn); err != nil {
		c.conn.Close()
		return err
	}
	c.lastSend = now
	return nil
}

func (c *mqttClient) send(p packets.ControlPacket) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeLocked(p)
}

// connected reports whether a connection is open.
func (c *mqttClient) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// addLocked registers p as waiting for its acknowledgement until
// timeout from now, under a free packet id.
func (c *mqttClient) addLocked(p packets.ControlPacket, timeout time.Duration, done ackFunc) (*waiter, error) {
	if c.inflight == nil {
		c.inflight = map[uint16]*waiter{}
	}
	if len(c.inflight) >= 1<<16-1 {
		return nil, errIDsExhausted
	}
	for {
		c.nextID++
		if _, used := c.inflight[c.nextID]; c.nextID != 0 && !used {
			break
		}
	}
	c.seq++
	w := &waiter{pkt: p, seq: c.seq, deadline: time.Now().Add(timeout), done: done}
	c.inflight[c.nextID] = w
	return w, nil
}

// publish sends payload at QoS 1 on topic and calls done with its PUBACK,
// or with errTimeout after timeout. While disconnected it is kept and sent
// on the next connect. An error returned means done will not be called.
func (c *mqttClient) publish(topic string, payload []byte, timeout time.Duration, done ackFunc) error {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.TopicName, p.Payload = 1, topic, payload
	c.mu.Lock()
	defer c.mu.Unlock()
	w, err := c.addLocked(p, timeout, done)
	if err != nil {
		return err
	}
	p.MessageID = c.nextID
	w.written = c.writeLocked(p) == nil
	return nil
}

// publish0 sends payload at QoS 0 on topic: written, or an error (not
// connected: dropped, as a QoS 0 message is).
func (c *mqttClient) publish0(topic string, payload []byte) error {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Payload = topic, payload
	return c.send(p)
}

// subscribe sends one SUBSCRIBE of filters at qos and calls done with its
// SUBACK, with errTimeout after timeout, or errConnLost. An error returned
// (not connected) means done will not be called.
func (c *mqttClient) subscribe(filters []string, qos []byte, timeout time.Duration, done ackFunc) error {
	p := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	p.Topics, p.Qoss = filters, qos
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return errNotConnected
	}
	if _, err := c.addLocked(p, timeout, done); err != nil {
		return err
	}
	p.MessageID = c.nextID
	if err := c.writeLocked(p); err != nil {
		delete(c.inflight, p.MessageID)
		return err
	}
	return nil
}

// serve reads nc until it fails, handling each packet inline: an
// acknowledgement completes its waiter, a PUBLISH goes to onPublish and is
// acknowledged after it at QoS 1.
func (c *mqttClient) serve(br *bufio.Reader, onPublish func(*packets.PublishPacket)) error {
	for {
		p, err := packets.ReadPacket(br)
		if err != nil {
			return err
		}
		switch p := p.(type) {
		case *packets.PublishPacket:
			onPublish(p)
			if p.Qos == 1 {
				ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
				ack.MessageID = p.MessageID
				_ = c.send(ack) // a failure closed the connection: the next read fails
			}
		case *packets.PubackPacket:
			c.complete(p.MessageID, p)
		case *packets.SubackPacket:
			c.complete(p.MessageID, p)
		case *packets.PingrespPacket:
			c.mu.Lock()
			c.pingSent = time.Time{}
			c.mu.Unlock()
		}
	}
}

// complete ends the wait for packet id with its acknowledgement.
func (c *mqttClient) complete(id uint16, ack packets.ControlPacket) {
	c.mu.Lock()
	w := c.inflight[id]
	var done ackFunc
	if w != nil {
		delete(c.inflight, id)
		done, w.done = w.done, nil
	}
	c.mu.Unlock()
	if done != nil {
		done(ack, nil)
	}
}

// detach forgets nc after its reader stopped and fails the subscribes
// that waited on it; it reports whether the connection was lost (not
// closed by close).
func (c *mqttClient) detach(nc net.Conn) (lost bool) {
	nc.Close()
	c.mu.Lock()
	if lost = c.conn == nc; lost {
		c.conn = nil
	}
	var failed []ackFunc
	for id, w := range c.inflight {
		if _, ok := w.pkt.(*packets.SubscribePacket); ok {
			delete(c.inflight, id)
			if w.done != nil {
				failed, w.done = append(failed, w.done), nil
			}
		}
	}
	c.mu.Unlock()
	for _, done := range failed {
		done(nil, errConnLost)
	}
	return lost
}

// expire fails the waits overdue at now (a publish stays in the session,
// to be sent again after a reconnect).
func (c *mqttClient) expire(now time.Time) {
	var overdue []ackFunc
	c.mu.Lock()
	for id, w := range c.inflight {
		if w.done == nil || now.Before(w.deadline) {
			continue
		}
		overdue, w.done = append(overdue, w.done), nil
		if _, ok := w.pkt.(*packets.SubscribePacket); ok {
			delete(c.inflight, id)
		}
	}
	c.mu.Unlock()
	for _, done := range overdue {
		done(nil, errTimeout)
	}
}

// keepalive sends PINGREQ when nothing was sent for the keepalive
// interval, closes a connection whose PINGRESP is overdue, and returns
// when to look again.
func (c *mqttClient) keepalive(now time.Time) time.Time {
	ka := c.cfg.keepAlive
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.conn == nil:
		return now.Add(ka)
	case !c.pingSent.IsZero() && now.Sub(c.pingSent) >= pingTimeout:
		c.conn.Close() // its reader reports the loss
		return now.Add(ka)
	case now.Sub(c.lastSend) >= ka && c.pingSent.IsZero():
		if c.writeLocked(packets.NewControlPacket(packets.Pingreq)) == nil {
			c.pingSent = now
		}
	}
	next := c.lastSend.Add(ka)
	if p := c.pingSent.Add(pingTimeout); !c.pingSent.IsZero() && p.Before(next) {
		next = p
	}
	if soon := now.Add(schedSlot); next.Before(soon) {
		return soon
	}
	return next
}

// close sends DISCONNECT on the open connection, if any, and closes it;
// no connect succeeds afterwards. It reports whether one was open.
func (c *mqttClient) close() bool {
	c.mu.Lock()
	c.closed = true
	nc := c.conn
	if nc != nil {
		_ = c.writeLocked(packets.NewControlPacket(packets.Disconnect))
		c.conn = nil
	}
	c.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
	return nc != nil
}
