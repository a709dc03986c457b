//go:build cgo

// The libraries are opened with dlopen rather than linked, so that building
// sluice never needs them and a binary that finds them missing at run time
// reports transcoding as unavailable instead of failing to start. libopus
// needs no headers (its API is opaque pointers and ints, declared below);
// libavcodec's structs do, so the AAC half compiles only where
// libavcodec-dev is installed.

#include "clibs.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// libopus 1.x ABI (opus.h, opus_defines.h).
typedef struct OpusDecoder OpusDecoder;
typedef struct OpusEncoder OpusEncoder;
OpusDecoder *opus_decoder_create(int32_t fs, int channels, int *error);
int opus_decode_float(OpusDecoder *st, const unsigned char *data, int32_t len, float *pcm, int frame_size, int decode_fec);
void opus_decoder_destroy(OpusDecoder *st);
OpusEncoder *opus_encoder_create(int32_t fs, int channels, int application, int *error);
int32_t opus_encode_float(OpusEncoder *st, const float *pcm, int frame_size, unsigned char *data, int32_t max_data_bytes);
int opus_encoder_ctl(OpusEncoder *st, int request, ...);
void opus_encoder_destroy(OpusEncoder *st);
const char *opus_strerror(int error);

#define SL_OPUS_APPLICATION_AUDIO 2049
#define SL_OPUS_SET_BITRATE_REQUEST 4002
#define SL_OPUS_SET_INBAND_FEC_REQUEST 4012
#define SL_OPUS_SET_PACKET_LOSS_PERC_REQUEST 4014
#define SL_OPUS_SET_DTX_REQUEST 4016
#define SL_OPUS_SET_COMPLEXITY_REQUEST 4010
#define SL_OPUS_GET_LOOKAHEAD_REQUEST 4027

#define SL_OPUS_SYMS(X)         \
	X(opus_decoder_create)  \
	X(opus_decode_float)    \
	X(opus_decoder_destroy) \
	X(opus_encoder_create)  \
	X(opus_encode_float)    \
	X(opus_encoder_ctl)     \
	X(opus_encoder_destroy) \
	X(opus_strerror)

#if __has_include(<libavcodec/avcodec.h>) && __has_include(<libswresample/swresample.h>)
#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
#include <libswresample/swresample.h>
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 24, 100) // AVChannelLayout: FFmpeg 5.1
#define SL_HAVE_AVCODEC 1
#endif
#endif

#ifdef SL_HAVE_AVCODEC
#define SL_AVUTIL_SYMS(X)        \
	X(av_frame_alloc)         \
	X(av_frame_free)          \
	X(av_frame_get_buffer)    \
	X(av_frame_make_writable) \
	X(av_dict_set)            \
	X(av_dict_parse_string)   \
	X(av_dict_free)           \
	X(av_dict_count)          \
	X(av_channel_layout_default) \
	X(av_channel_layout_copy) \
	X(av_mallocz)             \
	X(av_strerror)            \
	X(av_log_set_level)
#define SL_AVCODEC_SYMS(X)            \
	X(avcodec_find_encoder_by_name) \
	X(avcodec_find_decoder)         \
	X(avcodec_alloc_context3)       \
	X(avcodec_open2)                \
	X(avcodec_free_context)         \
	X(avcodec_send_frame)           \
	X(avcodec_receive_packet)       \
	X(avcodec_send_packet)          \
	X(avcodec_receive_frame)        \
	X(av_packet_alloc)              \
	X(av_packet_free)               \
	X(av_packet_unref)
#define SL_SWR_SYMS(X)        \
	X(swr_alloc_set_opts2) \
	X(swr_init)            \
	X(swr_convert)         \
	X(swr_get_delay)       \
	X(swr_free)
#define SL_SONAME(lib, major) lib ".so." AV_STRINGIFY(major)
#else
#define SL_AVUTIL_SYMS(X)
#define SL_AVCODEC_SYMS(X)
#define SL_SWR_SYMS(X)
#endif

#define SL_DECLARE(name) __typeof__(&name) name;
static struct {
	SL_OPUS_SYMS(SL_DECLARE)
	SL_AVUTIL_SYMS(SL_DECLARE)
	SL_AVCODEC_SYMS(SL_DECLARE)
	SL_SWR_SYMS(SL_DECLARE)
} sl;

static char sl_err[512];

static void *sl_open(const char *soname) {
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(sl_err, sizeof sl_err, "%s", dlerror());
	}
	return h;
}

#define SL_RESOLVE(name)                                                        \
	if (!(sl.name = (__typeof__(&name))dlsym(h, #name))) {                  \
		snprintf(sl_err, sizeof sl_err, "%s: no symbol %s", soname, #name); \
		return sl_err;                                                  \
	}

const char *sl_load(void) {
	const char *soname = "libopus.so.0";
	void *h = sl_open(soname);
	if (!h) {
		return sl_err;
	}
	SL_OPUS_SYMS(SL_RESOLVE)
#ifdef SL_HAVE_AVCODEC
	soname = SL_SONAME("libavutil", LIBAVUTIL_VERSION_MAJOR);
	if (!(h = sl_open(soname))) {
		return sl_err;
	}
	SL_AVUTIL_SYMS(SL_RESOLVE)
	soname = SL_SONAME("libavcodec", LIBAVCODEC_VERSION_MAJOR);
	if (!(h = sl_open(soname))) {
		return sl_err;
	}
	SL_AVCODEC_SYMS(SL_RESOLVE)
	soname = SL_SONAME("libswresample", LIBSWRESAMPLE_VERSION_MAJOR);
	if (!(h = sl_open(soname))) {
		return sl_err;
	}
	SL_SWR_SYMS(SL_RESOLVE)
	// Errors come back as return values; libavcodec's own log lines
	// (statistics on close, warnings) would go to sluice's stderr.
	sl.av_log_set_level(AV_LOG_QUIET);
	return NULL;
#else
	return "built without libavcodec's headers (libavcodec-dev and libswresample-dev, FFmpeg >= 5.1)";
#endif
}

int sl_have_avcodec_headers(void) {
#ifdef SL_HAVE_AVCODEC
	return 1;
#else
	return 0;
#endif
}

// --- libopus

struct sl_opusdec {
	OpusDecoder *st;
};

sl_opusdec *sl_opusdec_new(int channels, int *err) {
	OpusDecoder *st = sl.opus_decoder_create(48000, channels, err);
	if (!st) {
		return NULL;
	}
	sl_opusdec *d = calloc(1, sizeof *d);
	d->st = st;
	return d;
}

int sl_opusdec_decode(sl_opusdec *d, const unsigned char *data, int len, float *pcm, int frame_size, int fec) {
	return sl.opus_decode_float(d->st, data, len, pcm, frame_size, fec);
}

void sl_opusdec_free(sl_opusdec *d) {
	sl.opus_decoder_destroy(d->st);
	free(d);
}

struct sl_opusenc {
	OpusEncoder *st;
};

sl_opusenc *sl_opusenc_new(int rate, int channels, int bitrate, int complexity, int loss_percent, int dtx, int *err) {
	OpusEncoder *st = sl.opus_encoder_create(rate, channels, SL_OPUS_APPLICATION_AUDIO, err);
	if (!st) {
		return NULL;
	}
	sl.opus_encoder_ctl(st, SL_OPUS_SET_BITRATE_REQUEST, (int32_t)bitrate);
	sl.opus_encoder_ctl(st, SL_OPUS_SET_INBAND_FEC_REQUEST, (int32_t)(loss_percent > 0));
	sl.opus_encoder_ctl(st, SL_OPUS_SET_PACKET_LOSS_PERC_REQUEST, (int32_t)loss_percent);
	sl.opus_encoder_ctl(st, SL_OPUS_SET_DTX_REQUEST, (int32_t)dtx);
	if (complexity >= 0) {
		sl.opus_encoder_ctl(st, SL_OPUS_SET_COMPLEXITY_REQUEST, (int32_t)complexity);
	}
	sl_opusenc *e = calloc(1, sizeof *e);
	e->st = st;
	return e;
}

int sl_opusenc_encode(sl_opusenc *e, const float *pcm, int frame_size, unsigned char *out, int cap) {
	return sl.opus_encode_float(e->st, pcm, frame_size, out, cap);
}

int sl_opusenc_lookahead(sl_opusenc *e) {
	int32_t n = 0;
	sl.opus_encoder_ctl(e->st, SL_OPUS_GET_LOOKAHEAD_REQUEST, &n);
	return n;
}

void sl_opusenc_free(sl_opusenc *e) {
	sl.opus_encoder_destroy(e->st);
	free(e);
}

const char *sl_opus_strerror(int err) {
	return sl.opus_strerror ? sl.opus_strerror(err) : "libopus not loaded";
}

// --- libavcodec

#ifdef SL_HAVE_AVCODEC

struct sl_aacenc {
	AVCodecContext *ctx;
	AVFrame *frame;
	AVPacket *pkt;
	int channels;
};

void sl_aacenc_free(sl_aacenc *e) {
	if (!e) {
		return;
	}
	sl.avcodec_free_context(&e->ctx);
	sl.av_frame_free(&e->frame);
	sl.av_packet_free(&e->pkt);
	free(e);
}

int sl_aacenc_new(sl_aacenc **out, int channels, int sample_rate, int bitrate, const char *options) {
	*out = NULL;
	const AVCodec *codec = sl.avcodec_find_encoder_by_name("aac");
	if (!codec) {
		return AVERROR_ENCODER_NOT_FOUND;
	}
	sl_aacenc *e = calloc(1, sizeof *e);
	e->channels = channels;
	e->ctx = sl.avcodec_alloc_context3(codec);
	e->frame = sl.av_frame_alloc();
	e->pkt = sl.av_packet_alloc();
	if (!e->ctx || !e->frame || !e->pkt) {
		sl_aacenc_free(e);
		return AVERROR(ENOMEM);
	}
	AVCodecContext *c = e->ctx;
	c->sample_rate = sample_rate;
	c->sample_fmt = AV_SAMPLE_FMT_FLTP;
	sl.av_channel_layout_default(&c->ch_layout, channels);
	c->bit_rate = bitrate;
	c->time_base = (AVRational){1, sample_rate};
	c->profile = FF_PROFILE_AAC_LOW;
	c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER; // AudioSpecificConfig in extradata
	AVDictionary *opts = NULL;
	int ret = 0;
	if (options && *options && (ret = sl.av_dict_parse_string(&opts, options, "=", ":", 0)) < 0) {
		sl.av_dict_free(&opts);
		sl_aacenc_free(e);
		return ret;
	}
	ret = sl.avcodec_open2(c, codec, &opts);
	if (ret >= 0 && sl.av_dict_count(opts) > 0) {
		ret = AVERROR_OPTION_NOT_FOUND; // left over: unknown to the encoder
	}
	sl.av_dict_free(&opts);
	if (ret < 0) {
		sl_aacenc_free(e);
		return ret;
	}
	e->frame->format = AV_SAMPLE_FMT_FLTP;
	e->frame->nb_samples = c->frame_size;
	e->frame->sample_rate = sample_rate;
	if ((ret = sl.av_channel_layout_copy(&e->frame->ch_layout, &c->ch_layout)) < 0 ||
	    (ret = sl.av_frame_get_buffer(e->frame, 0)) < 0) {
		sl_aacenc_free(e);
		return ret;
	}
	*out = e;
	return 0;
}

int sl_aacenc_frame_size(sl_aacenc *e) { return e->ctx->frame_size; }
int sl_aacenc_delay(sl_aacenc *e) { return e->ctx->initial_padding; }

int sl_aacenc_extradata(sl_aacenc *e, const unsigned char **data) {
	*data = e->ctx->extradata;
	return e->ctx->extradata_size;
}

int sl_aacenc_send(sl_aacenc *e, const float *pcm, int samples, int64_t pts) {
	if (!pcm) {
		return sl.avcodec_send_frame(e->ctx, NULL);
	}
	if (samples <= 0 || samples > e->ctx->frame_size) {
		return AVERROR(EINVAL);
	}
	int ret = sl.av_frame_make_writable(e->frame);
	if (ret < 0) {
		return ret;
	}
	// Interleaved (what decoders give) to planar (what the encoder takes).
	int ch = e->channels;
	for (int c = 0; c < ch; c++) {
		float *dst = (float *)e->frame->extended_data[c];
		const float *src = pcm + c;
		for (int i = 0; i < samples; i++) {
			dst[i] = src[i * ch];
		}
	}
	e->frame->nb_samples = samples;
	e->frame->pts = pts;
	return sl.avcodec_send_frame(e->ctx, e->frame);
}

int sl_aacenc_receive(sl_aacenc *e, unsigned char *out, int cap, int *size, int64_t *pts) {
	int ret = sl.avcodec_receive_packet(e->ctx, e->pkt);
	if (ret == AVERROR(EAGAIN)) {
		return SL_AGAIN;
	}
	if (ret == AVERROR_EOF) {
		return SL_EOF;
	}
	if (ret < 0) {
		return ret;
	}
	if (e->pkt->size > cap) {
		sl.av_packet_unref(e->pkt);
		return AVERROR(ERANGE);
	}
	memcpy(out, e->pkt->data, e->pkt->size);
	*size = e->pkt->size;
	*pts = e->pkt->pts;
	sl.av_packet_unref(e->pkt);
	return SL_GOT;
}

struct sl_aacdec {
	AVCodecContext *ctx;
	AVFrame *frame;
	AVPacket *pkt;
};

void sl_aacdec_free(sl_aacdec *d) {
	if (!d) {
		return;
	}
	sl.avcodec_free_context(&d->ctx);
	sl.av_frame_free(&d->frame);
	sl.av_packet_free(&d->pkt);
	free(d);
}

int sl_aacdec_new(sl_aacdec **out, const unsigned char *asc, int asc_len) {
	*out = NULL;
	const AVCodec *codec = sl.avcodec_find_decoder(AV_CODEC_ID_AAC);
	if (!codec) {
		return AVERROR_DECODER_NOT_FOUND;
	}
	sl_aacdec *d = calloc(1, sizeof *d);
	d->ctx = sl.avcodec_alloc_context3(codec);
	d->frame = sl.av_frame_alloc();
	d->pkt = sl.av_packet_alloc();
	if (!d->ctx || !d->frame || !d->pkt) {
		sl_aacdec_free(d);
		return AVERROR(ENOMEM);
	}
	d->ctx->extradata = sl.av_mallocz(asc_len + AV_INPUT_BUFFER_PADDING_SIZE);
	if (!d->ctx->extradata) {
		sl_aacdec_free(d);
		return AVERROR(ENOMEM);
	}
	memcpy(d->ctx->extradata, asc, asc_len);
	d->ctx->extradata_size = asc_len;
	int ret = sl.avcodec_open2(d->ctx, codec, NULL);
	if (ret < 0) {
		sl_aacdec_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

int sl_aacdec_decode(sl_aacdec *d, const unsigned char *au, int len, float *pcm, int cap, int *samples, int *channels) {
	// The packet borrows the caller's bytes for the duration of the call;
	// the decoder copies what it keeps (no refcounted buffer).
	d->pkt->data = (uint8_t *)au;
	d->pkt->size = len;
	int ret = sl.avcodec_send_packet(d->ctx, d->pkt);
	d->pkt->data = NULL;
	d->pkt->size = 0;
	if (ret < 0) {
		return ret;
	}
	ret = sl.avcodec_receive_frame(d->ctx, d->frame);
	if (ret == AVERROR(EAGAIN)) {
		return SL_AGAIN;
	}
	if (ret < 0) {
		return ret;
	}
	AVFrame *f = d->frame;
	int ch = f->ch_layout.nb_channels;
	int n = f->nb_samples;
	if (n * ch > cap || f->format != AV_SAMPLE_FMT_FLTP) {
		return AVERROR(ERANGE);
	}
	for (int c = 0; c < ch; c++) {
		const float *src = (const float *)f->extended_data[c];
		for (int i = 0; i < n; i++) {
			pcm[i * ch + c] = src[i];
		}
	}
	*samples = n;
	*channels = ch;
	return SL_GOT;
}

// --- libswresample: interleaved float in and out, same channel count.

struct sl_swr {
	SwrContext *ctx;
	int channels;
};

int sl_swr_new(sl_swr **out, int in_rate, int out_rate, int channels) {
	*out = NULL;
	AVChannelLayout layout;
	sl.av_channel_layout_default(&layout, channels);
	SwrContext *ctx = NULL;
	int ret = sl.swr_alloc_set_opts2(&ctx, &layout, AV_SAMPLE_FMT_FLT, out_rate, &layout, AV_SAMPLE_FMT_FLT, in_rate, 0, NULL);
	if (ret < 0) {
		return ret;
	}
	if ((ret = sl.swr_init(ctx)) < 0) {
		sl.swr_free(&ctx);
		return ret;
	}
	sl_swr *r = calloc(1, sizeof *r);
	r->ctx = ctx;
	r->channels = channels;
	*out = r;
	return 0;
}

int sl_swr_convert(sl_swr *r, const float *in, int in_samples, float *out, int out_cap) {
	const uint8_t *ip[1] = {(const uint8_t *)in};
	uint8_t *op[1] = {(uint8_t *)out};
	return sl.swr_convert(r->ctx, op, out_cap, in ? ip : NULL, in_samples);
}

int64_t sl_swr_delay(sl_swr *r, int rate) { return sl.swr_get_delay(r->ctx, rate); }

void sl_swr_free(sl_swr *r) {
	if (!r) {
		return;
	}
	sl.swr_free(&r->ctx);
	free(r);
}

void sl_averror(int err, char *buf, size_t len) {
	if (sl.av_strerror(err, buf, len) < 0) {
		snprintf(buf, len, "libavcodec error %d", err);
	}
}

#else // !SL_HAVE_AVCODEC: never called, sl_load fails first.

int sl_aacenc_new(sl_aacenc **out, int channels, int sample_rate, int bitrate, const char *options) { return -1; }
int sl_aacenc_frame_size(sl_aacenc *e) { return 0; }
int sl_aacenc_delay(sl_aacenc *e) { return 0; }
int sl_aacenc_extradata(sl_aacenc *e, const unsigned char **data) { return 0; }
int sl_aacenc_send(sl_aacenc *e, const float *pcm, int samples, int64_t pts) { return -1; }
int sl_aacenc_receive(sl_aacenc *e, unsigned char *out, int cap, int *size, int64_t *pts) { return -1; }
void sl_aacenc_free(sl_aacenc *e) {}
int sl_aacdec_new(sl_aacdec **out, const unsigned char *asc, int asc_len) { return -1; }
int sl_aacdec_decode(sl_aacdec *d, const unsigned char *au, int len, float *pcm, int cap, int *samples, int *channels) { return -1; }
void sl_aacdec_free(sl_aacdec *d) {}
void sl_averror(int err, char *buf, size_t len) { snprintf(buf, len, "libavcodec error %d", err); }
int sl_swr_new(sl_swr **out, int in_rate, int out_rate, int channels) { return -1; }
int sl_swr_convert(sl_swr *r, const float *in, int in_samples, float *out, int out_cap) { return -1; }
int64_t sl_swr_delay(sl_swr *r, int rate) { return 0; }
void sl_swr_free(sl_swr *r) {}

#endif
