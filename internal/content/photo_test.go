package content_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

func TestPhoto_AddGetDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	p := mustCreate(t, s, house("Photogenic"))

	uploads := []struct {
		data []byte
		typ  string
	}{{jpegBytes(t), "image/jpeg"}, {pngBytes(t), "image/png"}, {gifBytes(t), "image/gif"}, {webpBytes(), "image/webp"}}
	var infos []content.PhotoInfo
	for i, u := range uploads {
		info := mustPhoto(t, s, p, u.data)
		if info.ContentType != u.typ || info.SortOrder != i || info.Size != len(u.data) || info.ID.Version() != 7 {
			t.Errorf("photo %d: %+v, want type %s, sort order %d, size %d", i, info, u.typ, i, len(u.data))
		}
		infos = append(infos, info)
	}
	got, err := content.GetProperty(ctx, s, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(infos, got.Photos); d != "" {
		t.Errorf("property's photos (-want +got):\n%s", d)
	}
	for i, info := range infos {
		ph, err := content.GetPhoto(ctx, s, info.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		if ph.PhotoInfo != info || ph.PropertyID != p.ID || !bytes.Equal(ph.Data, uploads[i].data) || ph.CreatedAt.IsZero() {
			t.Errorf("GetPhoto %d: %+v", i, ph.PhotoInfo)
		}
	}

	// A deleted photo leaves a gap; the next one still goes last.
	if err := content.DeletePhoto(ctx, s, infos[3].ID); err != nil {
		t.Fatal(err)
	}
	if err := content.DeletePhoto(ctx, s, infos[3].ID); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("second DeletePhoto: %v, want ErrNotFound", err)
	}
	if _, err := content.GetPhoto(ctx, s, infos[3].ID, false); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("GetPhoto after delete: %v, want ErrNotFound", err)
	}
	if err := content.DeletePhoto(ctx, s, infos[1].ID); err != nil {
		t.Fatal(err)
	}
	if next := mustPhoto(t, s, p, pngBytes(t)); next.SortOrder != 3 {
		t.Errorf("sort order after deletes: %d, want 3", next.SortOrder)
	}

	_, err = content.AddPhoto(ctx, s, uuid.Must(uuid.NewV7()), pngBytes(t), photoLimits)
	wantErr(t, "AddPhoto to an unknown property", err, content.ErrNotFound)
}

func TestPhoto_OfAHiddenPropertyIsNotPublic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	in := house("Under offer")
	in.Visible = false
	p := mustCreate(t, s, in)
	ph := mustPhoto(t, s, p, pngBytes(t))
	if _, err := content.GetPhoto(ctx, s, ph.ID, true); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("public GetPhoto of a hidden property: %v, want ErrNotFound", err)
	}
	if got, err := content.GetPhoto(ctx, s, ph.ID, false); err != nil || got.ID != ph.ID {
		t.Errorf("admin GetPhoto of a hidden property: %v, %v", got.ID, err)
	}
}

func TestPhoto_OversizeEmptyAndNonImageAreRejectedWithNothingWritten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	p := mustCreate(t, s, house("Photo target"))
	mustPhoto(t, s, p, pngBytes(t))
	before := snapshot(t, s)

	oversize := append(pngBytes(t), make([]byte, content.MaxPhotoBytes)...)
	for name, data := range map[string][]byte{
		"oversize PNG":       oversize,
		"empty":              {},
		"HTML named .jpg":    []byte("<!DOCTYPE html><script>alert(document.cookie)</script>"),
		"SVG with a script":  []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`),
		"plain text":         []byte("just some text"),
		"executable":         append([]byte("\x7fELF"), make([]byte, 100)...),
		"PDF":                []byte("%PDF-1.4 ..."),
		"truncated JPEG SOI": {0xff},
	} {
		_, err := content.AddPhoto(ctx, s, p.ID, data, photoLimits)
		msg := invalidFields(t, err)["photo"]
		if msg == "" {
			t.Errorf("%s: no photo problem in %v", name, err)
		}
		if name == "oversize PNG" && !strings.Contains(msg, "5 MiB") {
			t.Errorf("oversize message %q does not name the 5 MiB limit", msg)
		}
	}
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("rejected photos wrote rows:\n%s", d)
	}

	// Exactly the limit is accepted, by this package and by the schema.
	atLimit := append(pngBytes(t), make([]byte, content.MaxPhotoBytes)...)[:content.MaxPhotoBytes]
	if info := mustPhoto(t, s, p, atLimit); info.Size != content.MaxPhotoBytes {
		t.Errorf("photo at the limit stored with size %d", info.Size)
	}
}

func TestPhoto_AtMostPerPropertyEvenUploadedAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	limits := content.PhotoLimits{PerProperty: 3, MaxSide: 12000}

	p := mustCreate(t, s, house("Three photos"))
	var infos []content.PhotoInfo
	for range 3 {
		info, err := content.AddPhoto(ctx, s, p.ID, pngBytes(t), limits)
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	before := snapshot(t, s)
	_, err := content.AddPhoto(ctx, s, p.ID, pngBytes(t), limits)
	if got, want := invalidFields(t, err)["photo"], "This property already has 3 photos, the most allowed."; got != want {
		t.Errorf("fourth photo: %q, want %q", got, want)
	}
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("the refused photo wrote rows:\n%s", d)
	}
	// A deleted photo frees its place; another property has its own.
	if err := content.DeletePhoto(ctx, s, infos[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := content.AddPhoto(ctx, s, p.ID, pngBytes(t), limits); err != nil {
		t.Errorf("photo after a delete: %v", err)
	}
	if _, err := content.AddPhoto(ctx, s, mustCreate(t, s, house("Other")).ID, pngBytes(t), limits); err != nil {
		t.Errorf("another property's photo: %v", err)
	}

	// Uploads at once take turns on the property's row, so they cannot all
	// see a free place.
	busy := mustCreate(t, s, house("Busy"))
	const uploads = 16
	var wg sync.WaitGroup
	errs := make([]error, uploads)
	for i := range uploads {
		wg.Go(func() { _, errs[i] = content.AddPhoto(ctx, s, busy.ID, pngBytes(t), limits) })
	}
	wg.Wait()
	stored := 0
	for _, err := range errs {
		var inv *content.InvalidError
		switch {
		case err == nil:
			stored++
		case !errors.As(err, &inv):
			t.Errorf("concurrent upload: %v", err)
		}
	}
	got, err := content.GetProperty(ctx, s, busy.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored != limits.PerProperty || len(got.Photos) != limits.PerProperty {
		t.Errorf("%d concurrent uploads stored %d (property has %d photos), want %d", uploads, stored, len(got.Photos), limits.PerProperty)
	}
}

func TestPhotoLimits_Room(t *testing.T) {
	t.Parallel()
	l := content.PhotoLimits{PerProperty: 50}
	for _, c := range []struct {
		have, adding int
		want         string
	}{
		{0, 6, ""},
		{44, 6, ""},
		{49, 1, ""},
		{50, 1, "This property already has 50 photos, the most allowed."},
		{60, 1, "This property already has 60 photos; the most allowed is 50."},
		{48, 3, "This property has 48 photos and may have at most 50: add at most 2 more."},
	} {
		got := ""
		if err := l.Room(c.have, c.adding); err != nil {
			got = invalidFields(t, err)["photo"]
		}
		if got != c.want {
			t.Errorf("Room(%d, %d) = %q, want %q", c.have, c.adding, got, c.want)
		}
	}
	if err := (content.PhotoLimits{PerProperty: 1}).Room(0, 2); err == nil || invalidFields(t, err)["photo"] != "A property may have at most 1 photo." {
		t.Errorf("two photos for a new property of at most one: %v", err)
	}
	if err := (content.PhotoLimits{}).Room(1_000_000, 6); err != nil {
		t.Errorf("no bound: %v", err)
	}
}

// The headers below declare a size and nothing else: a decoder that trusted
// them would allocate for the whole picture.

// pngSized is a PNG whose header declares w × h pixels.
func pngSized(t *testing.T, w, h uint32) []byte {
	b := pngBytes(t)
	// The signature, then IHDR: length, type, width, height, ..., CRC over
	// type and data.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// jpegSized is a JPEG whose frame header declares w × h pixels.
func jpegSized(t *testing.T, w, h uint16) []byte {
	b := jpegBytes(t)
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 marker in the encoded JPEG")
	}
	// Marker, length, precision, then height and width.
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

// gifSized is a GIF whose logical screen is w × h pixels.
func gifSized(t *testing.T, w, h uint16) []byte {
	b := gifBytes(t)
	binary.LittleEndian.PutUint16(b[6:], w)
	binary.LittleEndian.PutUint16(b[8:], h)
	return b
}

// webpChunk is a WebP file of one chunk.
func webpChunk(fourCC string, data []byte) []byte {
	data = append(data, make([]byte, 16)...)
	b := []byte("RIFF\x00\x00\x00\x00WEBP" + fourCC + "\x00\x00\x00\x00")
	binary.LittleEndian.PutUint32(b[16:], uint32(len(data)))
	b = append(b, data...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

// webpLossy is a lossy key frame of w × h (at most 16383) pixels.
func webpLossy(w, h uint16) []byte {
	return webpChunk("VP8 ", binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(
		[]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, w), h))
}

// webpLossless is a lossless image of w × h (at most 16384) pixels.
func webpLossless(w, h uint32) []byte {
	return webpChunk("VP8L", binary.LittleEndian.AppendUint32([]byte{0x2f}, (w-1)|(h-1)<<14))
}

// webpExtended is an extended-format image with a w × h canvas.
func webpExtended(w, h uint32) []byte {
	d := []byte{0, 0, 0, 0, byte(w - 1), byte((w - 1) >> 8), byte((w - 1) >> 16), byte(h - 1), byte((h - 1) >> 8), byte((h - 1) >> 16)}
	return webpChunk("VP8X", d)
}

func TestCheckPhoto_RefusesAbsurdSizesAndUnreadableHeaders(t *testing.T) {
	t.Parallel()
	limits := content.PhotoLimits{PerProperty: 50, MaxSide: 12000}
	for name, c := range map[string]struct {
		data []byte
		typ  string
	}{
		"PNG at the limit":        {pngSized(t, 12000, 12000), "image/png"},
		"JPEG at the limit":       {jpegSized(t, 12000, 10), "image/jpeg"},
		"GIF at the limit":        {gifSized(t, 10, 12000), "image/gif"},
		"lossy WebP":              {webpLossy(640, 480), "image/webp"},
		"lossless WebP":           {webpLossless(12000, 1), "image/webp"},
		"extended WebP":           {webpExtended(1, 12000), "image/webp"},
		"the real encoded images": {jpegBytes(t), "image/jpeg"},
	} {
		if got, err := content.CheckPhoto(c.data, limits); err != nil || got != c.typ {
			t.Errorf("%s: CheckPhoto = %q, %v; want %q", name, got, err, c.typ)
		}
	}
	for name, c := range map[string]struct {
		data []byte
		size string
	}{
		"PNG too wide":           {pngSized(t, 20000, 10), "20000 × 10"},
		"PNG too high":           {pngSized(t, 10, 20000), "10 × 20000"},
		"PNG 4 billion wide":     {pngSized(t, 1<<31-1, 1), "2147483647 × 1"},
		"JPEG too wide":          {jpegSized(t, 20000, 10), "20000 × 10"},
		"JPEG at the format max": {jpegSized(t, 65535, 65535), "65535 × 65535"},
		"GIF too high":           {gifSized(t, 10, 20000), "10 × 20000"},
		"lossy WebP too wide":    {webpLossy(16000, 10), "16000 × 10"},
		"lossless WebP too high": {webpLossless(10, 16384), "10 × 16384"},
		"extended WebP too wide": {webpExtended(20000, 10), "20000 × 10"},
		"extended WebP at 16M":   {webpExtended(1<<24, 1<<24), "16777216 × 16777216"},
	} {
		_, err := content.CheckPhoto(c.data, limits)
		want := "The photo is " + c.size + " pixels; the largest allowed is 12000 pixels a side."
		if got := invalidFields(t, err)["photo"]; got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	png := pngBytes(t)
	for name, data := range map[string][]byte{
		"PNG signature and nothing": png[:8],
		"PNG with a bad IHDR CRC":   append(append([]byte(nil), png[:29]...), 0, 0, 0, 0),
		"JPEG start and nothing":    {0xff, 0xd8, 0xff, 0xe0},
		"GIF signature and nothing": []byte("GIF89a"),
		"WebP of zeros":             append([]byte("RIFF\x24\x00\x00\x00WEBPVP8 "), make([]byte, 24)...),
		"WebP lossless, bad sig":    webpChunk("VP8L", []byte{0x00, 1, 2, 3, 4}),
		"WebP with no chunk":        []byte("RIFF\x04\x00\x00\x00WEBPVP"),
		"PNG of no pixels":          pngSized(t, 0, 10),
	} {
		_, err := content.CheckPhoto(data, limits)
		if got := invalidFields(t, err)["photo"]; got != "The file is not a JPEG, PNG, GIF or WebP image." {
			t.Errorf("%s: %q, want it refused as not an image", name, got)
		}
	}
	// No bound on the sides, but the header must still be read.
	if _, err := content.CheckPhoto(pngSized(t, 20000, 10), content.PhotoLimits{}); err != nil {
		t.Errorf("no bound: %v", err)
	}
	if _, err := content.CheckPhoto(png[:8], content.PhotoLimits{}); err == nil {
		t.Error("no bound: an unreadable header was accepted")
	}
}

func TestPhoto_AbsurdSizesAreRefusedWithNothingWritten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	p := mustCreate(t, s, house("Panorama"))
	before := snapshot(t, s)
	for name, data := range map[string][]byte{
		"JPEG": jpegSized(t, 20000, 10), "PNG": pngSized(t, 20000, 10), "GIF": gifSized(t, 20000, 10),
		"WebP": webpExtended(20000, 10), "unreadable PNG": pngBytes(t)[:8],
	} {
		if _, err := content.AddPhoto(ctx, s, p.ID, data, photoLimits); invalidFields(t, err)["photo"] == "" {
			t.Errorf("%s: no photo problem in %v", name, err)
		}
	}
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("refused photos wrote rows:\n%s", d)
	}
	if _, err := content.AddPhoto(ctx, s, p.ID, pngSized(t, 12000, 12000), photoLimits); err != nil {
		t.Errorf("a photo of 12000 pixels a side: %v", err)
	}
}

func photoOrder(t *testing.T, s tenant.Scope, propertyID uuid.UUID) ([]uuid.UUID, []int) {
	t.Helper()
	p, err := content.GetProperty(context.Background(), s, propertyID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	var orders []int
	for _, ph := range p.Photos {
		ids = append(ids, ph.ID)
		orders = append(orders, ph.SortOrder)
	}
	return ids, orders
}

// A photo moves to any position and the others shift; position 1 makes it
// the cover, which the lists and the public page show first.
func TestPhoto_MoveAndChooseTheCover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	p := mustCreate(t, s, house("Many rooms"))
	var a, b, c, d uuid.UUID
	for _, id := range []*uuid.UUID{&a, &b, &c, &d} {
		*id = mustPhoto(t, s, p, pngBytes(t)).ID
	}
	move := func(photo uuid.UUID, to int, want ...uuid.UUID) {
		t.Helper()
		if err := content.MovePhoto(ctx, s, p.ID, photo, to); err != nil {
			t.Fatalf("MovePhoto to %d: %v", to, err)
		}
		ids, orders := photoOrder(t, s, p.ID)
		if !slices.Equal(ids, want) {
			t.Errorf("after moving to %d: %v, want %v", to, ids, want)
		}
		if !slices.Equal(orders, []int{0, 1, 2, 3}[:len(want)]) {
			t.Errorf("after moving to %d: sort orders %v", to, orders)
		}
	}
	move(d, 1, d, a, b, c)
	move(d, 3, a, b, d, c)
	move(a, 4, b, d, c, a)
	move(c, 3, b, d, c, a) // where it is already
	move(a, 1, a, b, d, c)

	pub, err := content.GetVisibleProperty(ctx, s, p.Slug)
	if err != nil || len(pub.Photos) != 4 || pub.Photos[0].ID != a || pub.Photos[3].ID != c {
		t.Errorf("the public page's photos: %+v, %v", pub.Photos, err)
	}
	if r, err := content.Search(ctx, s, content.Filter{}); err != nil || *r.Properties[0].CoverPhotoID != a {
		t.Errorf("the public list's cover: %v", err)
	}
	if r, err := content.ListProperties(ctx, s, content.ListFilter{}); err != nil || *r.Properties[0].CoverPhotoID != a {
		t.Errorf("the admin list's cover: %v", err)
	}

	// A deleted photo leaves a gap that the next move closes, and an upload
	// still goes last.
	if err := content.DeletePhoto(ctx, s, b); err != nil {
		t.Fatal(err)
	}
	move(c, 1, c, a, d)
	e := mustPhoto(t, s, p, pngBytes(t))
	if ids, _ := photoOrder(t, s, p.ID); !slices.Equal(ids, []uuid.UUID{c, a, d, e.ID}) || e.SortOrder != 3 {
		t.Errorf("an upload after a move: %v, sort order %d", ids, e.SortOrder)
	}
}

func TestPhoto_MoveRefusesAndChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s, stranger := e.site(t, shard.Default), e.site(t, shard.Default)
	p := mustCreate(t, s, house("Two photos"))
	first, second := mustPhoto(t, s, p, pngBytes(t)), mustPhoto(t, s, p, pngBytes(t))
	other := mustCreate(t, s, house("Another"))
	otherPhoto := mustPhoto(t, s, other, pngBytes(t))
	strangers := mustCreate(t, stranger, house("A stranger's"))
	before, strangerBefore := snapshot(t, s), snapshot(t, stranger)

	for _, position := range []int{0, -1, 3, 1 << 30} {
		err := content.MovePhoto(ctx, s, p.ID, second.ID, position)
		if got := invalidFields(t, err)["position"]; got != "Choose a position between 1 and 2." {
			t.Errorf("position %d: %q", position, got)
		}
	}
	for name, err := range map[string]error{
		"another property's photo":  content.MovePhoto(ctx, s, p.ID, otherPhoto.ID, 1),
		"a photo of no property":    content.MovePhoto(ctx, s, p.ID, uuid.Must(uuid.NewV7()), 1),
		"a property that is not":    content.MovePhoto(ctx, s, uuid.Must(uuid.NewV7()), first.ID, 1),
		"a photo under another one": content.MovePhoto(ctx, s, other.ID, second.ID, 1),
		// Another website on the same shard, with a property of its own.
		"another website's photo":            content.MovePhoto(ctx, stranger, p.ID, second.ID, 1),
		"another website's photo, under its": content.MovePhoto(ctx, stranger, strangers.ID, second.ID, 1),
	} {
		wantErr(t, name, err, content.ErrNotFound)
	}
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("refused moves changed rows (-before +after):\n%s", d)
	}
	if d := cmp.Diff(strangerBefore, snapshot(t, stranger)); d != "" {
		t.Errorf("refused moves changed the other website's rows (-before +after):\n%s", d)
	}
}

// Moves and uploads at once take turns on the property's row: every photo
// ends with a place of its own.
func TestPhoto_MovesAndUploadsAtOnceKeepDistinctPlaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	p := mustCreate(t, s, house("Busy"))
	var photos []uuid.UUID
	for range 4 {
		photos = append(photos, mustPhoto(t, s, p, pngBytes(t)).ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 12 {
		wg.Go(func() { errs <- content.MovePhoto(ctx, s, p.ID, photos[i%4], 1+i%3) })
	}
	for range 4 {
		wg.Go(func() { _, err := content.AddPhoto(ctx, s, p.ID, pngBytes(t), photoLimits); errs <- err })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ids, orders := photoOrder(t, s, p.ID)
	if len(ids) != 8 || len(slices.Compact(slices.Clone(orders))) != 8 {
		t.Errorf("after concurrent moves and uploads: %d photos with sort orders %v", len(ids), orders)
	}
}
