// Package ingest is the one way into the hub. Every source that sends RTP
// (WHIP publishers, the cluster's edge pulls, RTSP publishers and pulled
// cameras) writes each of its tracks through a Track: the reorder window,
// the NACK schedule, padding removal with the sequence shift, keyframe
// requests (PLI or FIR to the track's own SSRC, rate-limited by the hub,
// and every Options.PLIInterval), sender-report timing and the loss, late
// and duplicate counters exist here once. Sources that deliver access
// units instead of RTP (RTMP, SRT, transcoders) are packetized once per
// stream by a FrameTrack and written to the same ring.
package ingest
