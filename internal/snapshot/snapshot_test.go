package snapshot

import (
	"bytes"
	"image/jpeg"
	"os"
	"testing"

	"github.com/sluice-media/sluice/internal/client"
)

// needAvcodec skips where libavcodec is missing, unless the run asks for
// it (SLUICE_TEST_REQUIRE_TRANSCODE, as scripts/test.sh sets).
func needAvcodec(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("SLUICE_TEST_REQUIRE_TRANSCODE") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestEncodeJPEG decodes the test clip's first keyframe and checks the
// JPEG: Go's decoder reads it, at the clip's size, and it is not flat.
func TestEncodeJPEG(t *testing.T) {
	needAvcodec(t)
	aus, err := client.ReadAccessUnitsFile("../../testdata/h264_cbp_320x240_25fps_3s.h264")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, n := range aus[0] {
		b.Write([]byte{0, 0, 0, 1})
		b.Write(n)
	}
	out, w, h, err := encodeJPEG(false, b.Bytes(), 5)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if w != 320 || h != 240 || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
		t.Fatalf("snapshot %dx%d (JPEG %v), want 320x240", w, h, img.Bounds())
	}
	lo, hi := uint32(1<<16), uint32(0)
	for y := 0; y < 240; y += 8 {
		for x := 0; x < 320; x += 8 {
			r, _, _, _ := img.At(x, y).RGBA()
			lo, hi = min(lo, r), max(hi, r)
		}
	}
	if hi-lo < 1<<12 {
		t.Errorf("snapshot is flat (red %d..%d)", lo, hi)
	}

	// Garbage is an error, not a crash.
	if _, _, _, err := encodeJPEG(false, []byte{0, 0, 0, 1, 0x65, 1, 2, 3}, 5); err == nil {
		t.Error("garbage decoded")
	}
}
