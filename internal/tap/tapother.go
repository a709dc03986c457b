package tap

import (
	"fmt"
	"strings"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/transcode"
)

// A Reader's AAC and G.711 sources: AAC goes to the AAC outputs as it
// is (depacketized, not decoded); G.711 is decoded and encoded to AAC-LC
// at 48 kHz.

// openOtherAudio sets up an AAC or G.711 track for AudioAAC.
func (r *Reader) openOtherAudio(t hub.Track) {
	r.audioRate = int(t.Codec.ClockRate)
	if isAAC(t.Codec) {
		p, err := parseAAC(t.Codec)
		if err != nil {
			r.audioErr = err
			return
		}
		r.aacIn = newAACDepacketizer(p)
		r.audio = &Track{Codec: AAC, ClockRate: transcode.SampleRate, Channels: aacChannels(p.config), AAC: p.config, Index: t.Index}
		return
	}
	in, err := newPCMSource(t.Codec)
	if err != nil {
		r.audioErr = err
		return
	}
	cfg := r.opt.Transcode
	cfg.Channels = 0 // the source's
	cfg.From = strings.ToLower(t.Codec.Name())
	tc, err := transcode.NewToAAC(cfg, in.rate, in.channels)
	if err != nil {
		in.close()
		r.audioErr = err
		return
	}
	asc := tc.Encoder().Config()
	r.pcmIn, r.toAAC = in, tc
	r.audio = &Track{Codec: AAC, ClockRate: transcode.SampleRate, Channels: in.channels, AAC: asc, Index: t.Index}
}

// otherAudioPacket passes AAC on or transcodes G.711.
func (r *Reader) otherAudioPacket(p *hub.Packet) {
	if r.aacIn != nil {
		for i, au := range r.aacIn.units(p) {
			t := r.tl.aNow + int64(i*mpeg4audio.SamplesPerAccessUnit)*audioRate/int64(r.audioRate)
			r.q.push(r.tl.audioUnit(t, au, p.Gen))
		}
		return
	}
	err := r.pcmIn.push(p, func(pcm []float32, ts uint32) error {
		at := r.tl.aNow + int64(int32(ts-p.Timestamp))*audioRate/int64(r.audioRate)
		out, err := r.toAAC.Push(pcm, at)
		for _, f := range out {
			r.q.push(r.tl.audioUnit(f.PTS, f.Payload, p.Gen))
		}
		return err
	})
	if err != nil {
		r.dropAudio(fmt.Errorf("transcode: %w", err))
	}
}

func (r *Reader) closeOtherAudio() {
	if r.toAAC != nil {
		r.toAAC.Close()
		r.toAAC = nil
	}
	if r.pcmIn != nil {
		r.pcmIn.close()
		r.pcmIn = nil
	}
	r.aacIn = nil
}
