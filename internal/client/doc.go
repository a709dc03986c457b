// Package client is a WHIP publisher and WHEP viewer built on pion, used by the tests and the bench tool.
//
// A Publisher sends H264 access units and Opus packets to a WHIP endpoint
// (RFC 9725); a Viewer pulls a stream from a WHEP endpoint, depacketizes
// H264 back into access units and counts what it receives. Both do the
// whole ICE gathering before the HTTP exchange (no trickle) and free every
// goroutine they start on Close.
package client
