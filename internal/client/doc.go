// Package client is a WHIP publisher and WHEP viewer built on pion, used by the tests and the bench tool.
//
// A Publisher sends H264 (or H265) access units and Opus packets to a WHIP
// endpoint (RFC 9725); a Viewer pulls a stream from a WHEP endpoint,
// depacketizes H264 or H265 back into access units and counts what it
// receives. For tests of loss recovery, both can route their media through
// a wrapped UDP socket (WrapConn) and the viewer can reorder before
// depacketizing (ViewOptions.Reorder). By default both
// do the whole ICE gathering before the HTTP exchange; with the Trickle
// option they send the offer first and the candidates by PATCH. Both can
// restart ICE by PATCH (RestartICE) and free every goroutine they start on
// Close.
package client
