// The C side of package snapshot: one keyframe decoded with libavcodec's
// H264/H265 decoder and encoded with its MJPEG encoder. clibs.c opens
// libavcodec and libavutil with dlopen at run time, like
// internal/transcode, so that a binary without them still runs and
// reports snapshots as unavailable.
#ifndef SLUICE_SNAPSHOT_CLIBS_H
#define SLUICE_SNAPSHOT_CLIBS_H

#include <stddef.h>
#include <stdint.h>

// sn_load loads the libraries once; NULL when usable, else why not.
const char *sn_load(void);

#define SN_H264 0
#define SN_H265 1

// sn_jpeg decodes one Annex-B access unit (a keyframe with its parameter
// sets) and encodes it as JPEG of the given quality (2 best .. 31). On
// success it returns 0 and *out (free with sn_free) of *out_len bytes and
// the picture's size; else a negative AVERROR or -1, with err filled in.
int sn_jpeg(int codec, const uint8_t *au, int len, int qscale, uint8_t **out, int *out_len, int *width, int *height, char *err, size_t err_len);
void sn_free(void *p);

#endif
