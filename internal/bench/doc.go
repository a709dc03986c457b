// Package bench measures a WHIP/WHEP server under load: one publisher
// sending H264 and Opus, N viewers joining in batches, and a report of what
// the viewers got (setup time, time to first keyframe, delivered packets,
// loss, server-added latency) and, for a server on this machine, what the
// server spent (CPU per delivered packet, memory per viewer).
//
// It works against any WHIP/WHEP URL pair; Compare starts sluice and
// MediaMTX as child processes on loopback and runs the same scenarios
// against both. The command is cmd/sluice-bench; docs/PERFORMANCE.md holds
// recorded results.
//
// Latency is measured with a stamp: every access unit the publisher sends
// carries an SEI NAL unit (user data unregistered) holding the access unit's
// index, and the publisher notes the wall time at which it hands the access
// unit to its RTP sender. A viewer that receives the packet starting that SEI
// looks the index up and takes the difference on the same monotonic clock.
// Servers rewrite SSRC, sequence numbers and timestamps but relay payloads
// (sluice) or re-packetize access units with their SEI intact (MediaMTX), so
// matching by payload content survives both.
package bench
