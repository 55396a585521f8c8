package events

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
