package tap

import (
	"fmt"
	"strings"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/transcode"
)

// A pipe is the codec work of one derived track: a source track's packets
// in, the access units of the derived codec out, each with its time in
// ticks of the derived track's clock on the source's timeline (the
// source's extended RTP time, scaled). One kind per direction:
//
//	AAC, G.711 → Opus   decode (libavcodec, table), encode (libopus)
//	Opus → AAC          decode with loss concealment (libopus), encode (FFmpeg)
//	G.711 → AAC         decode (table), resample, encode (FFmpeg)
//	Opus, AAC → G.711   decode (libopus, libavcodec), resample, encode (table)
type pipe interface {
	// push decodes p, whose extended RTP time on the source's clock is
	// ext, and calls emit with every access unit it finishes.
	push(p *hub.Packet, ext int64, emit func(ts int64, au []byte) error) error
	close()
}

// newPipe opens the codecs that turn src into dst.
func (x *Transcoders) newPipe(src, dst media.Codec) (pipe, error) {
	from := strings.ToLower(src.Name())
	if isAAC(src) {
		from = "aac"
	}
	switch {
	case strings.EqualFold(dst.Name(), "opus"):
		return x.toOpus(src, dst, from)
	case isAAC(dst):
		return x.toAAC(src, dst, from)
	}
	if ok, mu := isG711(dst); ok {
		return x.toG711(src, from, mu)
	}
	return nil, fmt.Errorf("no transcoder from %s to %s", src.Name(), dst.Name())
}

// toOpus decodes AAC or G.711 and encodes Opus.
func (x *Transcoders) toOpus(src, dst media.Codec, from string) (pipe, error) {
	in, err := newPCMSource(src)
	if err != nil {
		return nil, err
	}
	cfg := x.cfg.Opus
	cfg.Channels = transcode.ChannelsFromFmtp(dst.Fmtp)
	cfg.From = from
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 64000 * cfg.Channels
	}
	enc, err := transcode.NewToOpus(cfg, in.rate, in.channels)
	if err != nil {
		in.close()
		return nil, err
	}
	return &pcmPipe{in: in, rate: int64(src.ClockRate), closer: enc.Close,
		push1: emitAll(enc.Push, func(o transcode.OpusPacket) (int64, []byte) { return o.TS, o.Payload })}, nil
}

// toAAC encodes AAC-LC at 48 kHz from Opus (with libopus's concealment of
// losses) or from decoded G.711.
func (x *Transcoders) toAAC(src, dst media.Codec, from string) (pipe, error) {
	want, err := parseAAC(dst)
	if err != nil {
		return nil, err
	}
	cfg := x.cfg.AAC
	cfg.Channels = aacChannels(want.config)
	cfg.From = from
	if strings.EqualFold(src.Name(), "opus") {
		tc, err := transcode.New(cfg)
		if err != nil {
			return nil, err
		}
		if err := sameAAC(tc.Config(), want); err != nil {
			tc.Close()
			return nil, err
		}
		return &opusPipe{tc: tc}, nil
	}
	in, err := newPCMSource(src)
	if err != nil {
		return nil, err
	}
	enc, err := transcode.NewToAAC(cfg, in.rate, in.channels)
	if err != nil {
		in.close()
		return nil, err
	}
	if err := sameAAC(enc.Encoder().Config(), want); err != nil {
		enc.Close()
		in.close()
		return nil, err
	}
	return &pcmPipe{in: in, rate: int64(src.ClockRate), closer: enc.Close,
		push1: emitAll(enc.Push, func(f transcode.AACFrame) (int64, []byte) { return f.PTS, f.Payload })}, nil
}

// toG711 decodes Opus or AAC and encodes G.711 at 8 kHz mono.
func (x *Transcoders) toG711(src media.Codec, from string, mulaw bool) (pipe, error) {
	in, err := newPCMSource(src)
	if err != nil {
		return nil, err
	}
	enc, err := transcode.NewToG711(transcode.G711Config{Mulaw: mulaw, From: from}, in.rate, in.channels)
	if err != nil {
		in.close()
		return nil, err
	}
	return &pcmPipe{in: in, rate: int64(src.ClockRate), closer: enc.Close,
		push1: emitAll(enc.Push, func(o transcode.G711Packet) (int64, []byte) { return o.TS, o.Payload })}, nil
}

// emitAll makes a pcmPipe's push1 of an encoder's Push: each output
// (its time and payload, by at) goes to emit in order; the encoder's
// error comes after what it did encode.
func emitAll[T any](push func([]float32, int64) ([]T, error), at func(T) (int64, []byte)) func([]float32, int64, func(int64, []byte) error) error {
	return func(pcm []float32, ts int64, emit func(int64, []byte) error) error {
		out, err := push(pcm, ts)
		for _, o := range out {
			if werr := emit(at(o)); werr != nil {
				return werr
			}
		}
		return err
	}
}

// sameAAC checks that the encoder makes what the derived track declared.
func sameAAC(got interface {
	Marshal() ([]byte, error)
}, want aacParams) error {
	b, err := got.Marshal()
	if err != nil || string(b) != string(want.asc) {
		return fmt.Errorf("AAC encoder config %x, the track declares %x", b, want.asc)
	}
	return nil
}

// pcmPipe decodes a track to PCM (pcmSource) and gives each block, timed
// in 48 kHz ticks, to an encoder.
type pcmPipe struct {
	in     *pcmSource
	rate   int64 // the source's RTP clock rate
	push1  func(pcm []float32, at int64, emit func(int64, []byte) error) error
	closer func()
}

func (p *pcmPipe) push(pkt *hub.Packet, ext int64, emit func(int64, []byte) error) error {
	return p.in.push(pkt, func(pcm []float32, ts uint32) error {
		at := ext + int64(int32(ts-pkt.Timestamp))
		return p.push1(pcm, at*transcode.SampleRate/p.rate, emit)
	})
}

func (p *pcmPipe) close() {
	p.closer()
	p.in.close()
}

// opusPipe is the Opus→AAC transcoder, which drives libopus's loss
// concealment from the packets' sequence numbers.
type opusPipe struct {
	tc      *transcode.Transcoder
	base    int64 // ext of the first packet: the Transcoder's PTS 0
	started bool
}

func (p *opusPipe) push(pkt *hub.Packet, ext int64, emit func(int64, []byte) error) error {
	if !p.started {
		p.started, p.base = true, ext
	}
	out, err := p.tc.Push(pkt.Payload, pkt.Timestamp, pkt.SequenceNumber)
	for _, f := range out {
		if werr := emit(p.base+f.PTS, f.Payload); werr != nil {
			return werr
		}
	}
	return err
}

func (p *opusPipe) close() { p.tc.Close() }
