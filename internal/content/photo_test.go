package content_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/shard"
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

	_, err = content.AddPhoto(ctx, s, uuid.Must(uuid.NewV7()), pngBytes(t))
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
		_, err := content.AddPhoto(ctx, s, p.ID, data)
		msg := invalidFields(t, err)["photo"]
		if msg == "" {
			t.Errorf("%s: no photo problem in %v", name, err)
		}
		if name == "oversize PNG" && !strings.Contains(msg, "5 MB") {
			t.Errorf("oversize message %q does not name the 5 MB limit", msg)
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
