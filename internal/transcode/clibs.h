// The C side of package transcode: thin wrappers around libopus and
// libavcodec, which clibs.c loads with dlopen at run time so that a binary
// runs (and reports transcoding as unavailable) on a machine without them.
#ifndef SLUICE_TRANSCODE_CLIBS_H
#define SLUICE_TRANSCODE_CLIBS_H

#include <stddef.h>
#include <stdint.h>

// sl_load loads libopus, libavcodec and libswresample once; it returns NULL when both are
// usable, else why not. Every other function needs a successful sl_load.
const char *sl_load(void);

// sl_have_avcodec_headers is 1 when clibs.c was compiled with libavcodec's
// headers, which its AAC wrappers need.
int sl_have_avcodec_headers(void);

// libopus (no headers needed: its API is opaque pointers and ints).
typedef struct sl_opusdec sl_opusdec;
sl_opusdec *sl_opusdec_new(int channels, int *err);
int sl_opusdec_decode(sl_opusdec *d, const unsigned char *data, int len, float *pcm, int frame_size, int fec);
void sl_opusdec_free(sl_opusdec *d);

typedef struct sl_opusenc sl_opusenc;
// complexity 0..10, or -1 for libopus's default (9).
sl_opusenc *sl_opusenc_new(int rate, int channels, int bitrate, int complexity, int loss_percent, int dtx, int *err);
int sl_opusenc_lookahead(sl_opusenc *e);
int sl_opusenc_encode(sl_opusenc *e, const float *pcm, int frame_size, unsigned char *out, int cap);
void sl_opusenc_free(sl_opusenc *e);

const char *sl_opus_strerror(int err);

// libavcodec's native AAC encoder, fed interleaved float samples.
#define SL_GOT 0   // a packet was returned
#define SL_AGAIN 1 // the codec needs more input
#define SL_EOF 2   // the codec is drained

typedef struct sl_aacenc sl_aacenc;
// options are the encoder's AVOptions as "key=value:key=value".
int sl_aacenc_new(sl_aacenc **out, int channels, int sample_rate, int bitrate, const char *options);
int sl_aacenc_frame_size(sl_aacenc *e);
int sl_aacenc_delay(sl_aacenc *e);
int sl_aacenc_extradata(sl_aacenc *e, const unsigned char **data);
// pcm NULL starts draining.
int sl_aacenc_send(sl_aacenc *e, const float *pcm, int samples, int64_t pts);
int sl_aacenc_receive(sl_aacenc *e, unsigned char *out, int cap, int *size, int64_t *pts);
void sl_aacenc_free(sl_aacenc *e);

// libavcodec's AAC decoder, for tests and checks; output interleaved float.
typedef struct sl_aacdec sl_aacdec;
int sl_aacdec_new(sl_aacdec **out, const unsigned char *asc, int asc_len);
// Decodes one access unit into pcm (cap floats); returns SL_GOT with
// *samples per channel and *channels, SL_AGAIN, or an AVERROR.
int sl_aacdec_decode(sl_aacdec *d, const unsigned char *au, int len, float *pcm, int cap, int *samples, int *channels);
void sl_aacdec_free(sl_aacdec *d);

// libswresample, interleaved float in and out with the same channels.
typedef struct sl_swr sl_swr;
int sl_swr_new(sl_swr **out, int in_rate, int out_rate, int channels);
// in NULL drains; returns the samples per channel written, or an AVERROR.
int sl_swr_convert(sl_swr *r, const float *in, int in_samples, float *out, int out_cap);
int64_t sl_swr_delay(sl_swr *r, int rate);
void sl_swr_free(sl_swr *r);

void sl_averror(int err, char *buf, size_t len);

#endif
