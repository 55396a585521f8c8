package events

import "context"

// SetLoadBatch sets how many messages one batched direct get of s's Load
// asks for; 0 has Load walk the subject one direct get at a time (the path
// for streams without direct get). Call it before s is used.
func SetLoadBatch(s *JetStream, n int) {
	if n == 0 {
		s.batches = nil
		return
	}
	s.batches.size = n
}

// SetDirectLoad puts f in place of the Load that s's LoadLatest tries
// before the stream leader: a test plays a replica that lags with it.
func SetDirectLoad(s *JetStream, f func(context.Context, Aggregate) ([]Envelope, error)) {
	s.direct = f
}
