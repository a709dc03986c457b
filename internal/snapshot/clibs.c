//go:build cgo

#include "clibs.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __has_include(<libavcodec/avcodec.h>)
#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/pixfmt.h>
#define SN_HAVE_AVCODEC 1
#endif

#ifdef SN_HAVE_AVCODEC
#define SN_AVUTIL_SYMS(X)      \
	X(av_frame_alloc)       \
	X(av_frame_free)        \
	X(av_frame_get_buffer)  \
	X(av_strerror)          \
	X(av_log_set_level)
#define SN_AVCODEC_SYMS(X)            \
	X(avcodec_find_decoder)         \
	X(avcodec_find_encoder)         \
	X(avcodec_alloc_context3)       \
	X(avcodec_open2)                \
	X(avcodec_free_context)         \
	X(avcodec_send_frame)           \
	X(avcodec_receive_packet)       \
	X(avcodec_send_packet)          \
	X(avcodec_receive_frame)        \
	X(av_packet_alloc)              \
	X(av_packet_free)

#define SN_DECLARE(name) __typeof__(&name) name;
static struct {
	SN_AVUTIL_SYMS(SN_DECLARE)
	SN_AVCODEC_SYMS(SN_DECLARE)
} sn;

static char sn_err[512];

#define SN_RESOLVE(name)                                                        \
	if (!(sn.name = (__typeof__(&name))dlsym(h, #name))) {                  \
		snprintf(sn_err, sizeof sn_err, "%s: no symbol %s", soname, #name); \
		return sn_err;                                                  \
	}

#define SN_SONAME(lib, major) lib ".so." AV_STRINGIFY(major)

static const char *sn_do_load(void) {
	const char *soname = SN_SONAME("libavutil", LIBAVUTIL_VERSION_MAJOR);
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(sn_err, sizeof sn_err, "%s", dlerror());
		return sn_err;
	}
	SN_AVUTIL_SYMS(SN_RESOLVE)
	soname = SN_SONAME("libavcodec", LIBAVCODEC_VERSION_MAJOR);
	h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(sn_err, sizeof sn_err, "%s", dlerror());
		return sn_err;
	}
	SN_AVCODEC_SYMS(SN_RESOLVE)
	sn.av_log_set_level(AV_LOG_QUIET);
	if (!sn.avcodec_find_encoder(AV_CODEC_ID_MJPEG)) {
		return "libavcodec has no MJPEG encoder";
	}
	return NULL;
}

static int sn_loaded;
static const char *sn_load_err;

const char *sn_load(void) {
	// Called once, from Go's sync.Once.
	if (!sn_loaded) {
		sn_load_err = sn_do_load();
		sn_loaded = 1;
	}
	return sn_load_err;
}

static int sn_fail(int ret, const char *what, char *err, size_t err_len) {
	char buf[128] = "";
	if (ret < 0 && ret != -1) {
		sn.av_strerror(ret, buf, sizeof buf);
	}
	snprintf(err, err_len, "%s%s%s", what, buf[0] ? ": " : "", buf);
	return ret < 0 ? ret : -1;
}

// sn_full_range copies a limited-range (16..235) YUV 4:2:0 picture into a
// full-range one, which is what JPEG means by YCbCr.
static void sn_full_range(const AVFrame *in, AVFrame *out) {
	for (int p = 0; p < 3; p++) {
		int w = p ? (in->width + 1) / 2 : in->width;
		int h = p ? (in->height + 1) / 2 : in->height;
		for (int y = 0; y < h; y++) {
			const uint8_t *s = in->data[p] + (size_t)y * in->linesize[p];
			uint8_t *d = out->data[p] + (size_t)y * out->linesize[p];
			for (int x = 0; x < w; x++) {
				int v = p ? ((s[x] - 128) * 255 + 112) / 224 + 128 : ((s[x] - 16) * 255 + 109) / 219;
				d[x] = v < 0 ? 0 : v > 255 ? 255 : v;
			}
		}
	}
}

int sn_jpeg(int codec, const uint8_t *au, int len, int qscale, uint8_t **out, int *out_len, int *width, int *height, char *err, size_t err_len) {
	int ret = -1;
	AVCodecContext *dec = NULL, *enc = NULL;
	AVPacket *pkt = NULL;
	AVFrame *pic = NULL, *full = NULL;
	*out = NULL;

	const AVCodec *dc = sn.avcodec_find_decoder(codec == SN_H265 ? AV_CODEC_ID_HEVC : AV_CODEC_ID_H264);
	if (!dc) {
		ret = sn_fail(-1, "no decoder for the codec", err, err_len);
		goto done;
	}
	dec = sn.avcodec_alloc_context3(dc);
	pkt = sn.av_packet_alloc();
	pic = sn.av_frame_alloc();
	if (!dec || !pkt || !pic) {
		ret = sn_fail(AVERROR(ENOMEM), "alloc", err, err_len);
		goto done;
	}
	dec->thread_count = 1;
	if ((ret = sn.avcodec_open2(dec, dc, NULL)) < 0) {
		ret = sn_fail(ret, "opening the decoder", err, err_len);
		goto done;
	}
	pkt->data = (uint8_t *)au;
	pkt->size = len;
	pkt->flags = AV_PKT_FLAG_KEY;
	if ((ret = sn.avcodec_send_packet(dec, pkt)) < 0) {
		ret = sn_fail(ret, "decoding the keyframe", err, err_len);
		goto done;
	}
	sn.avcodec_send_packet(dec, NULL); // drain: the one frame comes out now
	if ((ret = sn.avcodec_receive_frame(dec, pic)) < 0) {
		ret = sn_fail(ret, "decoding the keyframe", err, err_len);
		goto done;
	}
	enum AVPixelFormat fmt;
	switch (pic->format) {
	case AV_PIX_FMT_YUV420P:
	case AV_PIX_FMT_YUVJ420P:
		fmt = AV_PIX_FMT_YUVJ420P;
		break;
	default:
		ret = sn_fail(-1, "the decoded picture is not YUV 4:2:0 8-bit", err, err_len);
		goto done;
	}
	if (pic->format == AV_PIX_FMT_YUV420P && pic->color_range != AVCOL_RANGE_JPEG) {
		full = sn.av_frame_alloc();
		if (!full) {
			ret = sn_fail(AVERROR(ENOMEM), "alloc", err, err_len);
			goto done;
		}
		full->format = AV_PIX_FMT_YUVJ420P;
		full->width = pic->width;
		full->height = pic->height;
		if ((ret = sn.av_frame_get_buffer(full, 0)) < 0) {
			ret = sn_fail(ret, "alloc", err, err_len);
			goto done;
		}
		sn_full_range(pic, full);
	} else {
		pic->format = AV_PIX_FMT_YUVJ420P; // the same planes
	}
	AVFrame *src = full ? full : pic;

	const AVCodec *ec = sn.avcodec_find_encoder(AV_CODEC_ID_MJPEG);
	enc = sn.avcodec_alloc_context3(ec);
	if (!enc) {
		ret = sn_fail(AVERROR(ENOMEM), "alloc", err, err_len);
		goto done;
	}
	enc->width = src->width;
	enc->height = src->height;
	enc->pix_fmt = fmt;
	enc->color_range = AVCOL_RANGE_JPEG;
	enc->time_base = (AVRational){1, 25};
	enc->flags |= AV_CODEC_FLAG_QSCALE;
	enc->global_quality = FF_QP2LAMBDA * qscale;
	enc->thread_count = 1;
	if ((ret = sn.avcodec_open2(enc, ec, NULL)) < 0) {
		ret = sn_fail(ret, "opening the JPEG encoder", err, err_len);
		goto done;
	}
	src->pts = 0;
	src->quality = enc->global_quality;
	src->pict_type = AV_PICTURE_TYPE_I;
	if ((ret = sn.avcodec_send_frame(enc, src)) < 0) {
		ret = sn_fail(ret, "encoding the JPEG", err, err_len);
		goto done;
	}
	sn.av_packet_free(&pkt);
	pkt = sn.av_packet_alloc();
	if (!pkt) {
		ret = sn_fail(AVERROR(ENOMEM), "alloc", err, err_len);
		goto done;
	}
	if ((ret = sn.avcodec_receive_packet(enc, pkt)) < 0) {
		ret = sn_fail(ret, "encoding the JPEG", err, err_len);
		goto done;
	}
	*out = malloc(pkt->size);
	if (!*out) {
		ret = sn_fail(AVERROR(ENOMEM), "alloc", err, err_len);
		goto done;
	}
	memcpy(*out, pkt->data, pkt->size);
	*out_len = pkt->size;
	*width = src->width;
	*height = src->height;
	ret = 0;
done:
	if (pkt) {
		sn.av_packet_free(&pkt);
	}
	if (pic) {
		sn.av_frame_free(&pic);
	}
	if (full) {
		sn.av_frame_free(&full);
	}
	if (dec) {
		sn.avcodec_free_context(&dec);
	}
	if (enc) {
		sn.avcodec_free_context(&enc);
	}
	return ret;
}

#else

const char *sn_load(void) {
	return "built without libavcodec's headers (install libavcodec-dev and rebuild)";
}

int sn_jpeg(int codec, const uint8_t *au, int len, int qscale, uint8_t **out, int *out_len, int *width, int *height, char *err, size_t err_len) {
	snprintf(err, err_len, "built without libavcodec's headers");
	return -1;
}

#endif

void sn_free(void *p) { free(p); }
