package web

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// plPNGSized is a small PNG whose header declares w × h pixels.
func plPNGSized(t *testing.T, w, h uint32) []byte {
	t.Helper()
	b := saPNG(t, 5)
	// The signature, then IHDR: length, type, width, height, ..., and a
	// CRC over type and data.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// withPhotoLimits is p served by another Server with photo limits l, on the
// same databases.
func withPhotoLimits(t *testing.T, p *platform, l content.PhotoLimits) *platform {
	t.Helper()
	srv, err := New(Options{Shards: p.set, Registry: p.cache, Logger: p.server.log, Photos: l})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	q := *p
	q.server, q.http = srv, hs
	return &q
}

func TestPhotoLimits_SiteAdminUploads(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	acme := p.tenant("acme", shard.Default)
	const host = "acme.localhost"
	db := p.cluster.URL[shard.Default]
	email, password := p.member(acme, "owner@acme.example")
	three := withPhotoLimits(t, p, content.PhotoLimits{PerProperty: 3})
	cookie := saSignIn(t, three, host, email, password)
	if three.server.photos.MaxSide != 12000 {
		t.Errorf("default side limit %d, want 12000", three.server.photos.MaxSide)
	}
	photos := func(names ...string) []saFile {
		var fs []saFile
		for i, n := range names {
			fs = append(fs, saFile{n, saPNG(t, uint8(i))})
		}
		return fs
	}
	refused := func(what string, r response, want ...string) {
		t.Helper()
		wantStatus(t, r, http.StatusUnprocessableEntity)
		saWantBody(t, r, want...)
	}

	before := saCount(t, db, acme.ID)
	refused("a new property with more photos than a property may have",
		saPostMultipart(t, three, host, "/site_admin/properties", cookie, saPropertyFields("Too many"), photos("1.png", "2.png", "3.png", "4.png")...),
		"A property may have at most 3 photos.", "Choose the photos again")
	saWantSameCounts(t, "too many for a new property", before, saCount(t, db, acme.ID))

	id := saCreatedID(t, saPostMultipart(t, three, host, "/site_admin/properties", cookie, saPropertyFields("Two photos"), photos("a.png", "b.png")...))
	upload := "/site_admin/properties/" + id.String() + "/photos"
	before = saCount(t, db, acme.ID)
	refused("two more for a property with room for one",
		saPostMultipart(t, three, host, upload, cookie, nil, photos("c.png", "d.png")...),
		"No photo was added. This property has 2 photos and may have at most 3: add at most 1 more.")
	saWantSameCounts(t, "two more", before, saCount(t, db, acme.ID))
	wantStatus(t, saPostMultipart(t, three, host, upload, cookie, nil, photos("c.png")...), http.StatusSeeOther)
	before = saCount(t, db, acme.ID)
	refused("one more for a full property",
		saPostMultipart(t, three, host, upload, cookie, nil, photos("d.png")...),
		"This property already has 3 photos, the most allowed.")
	saWantSameCounts(t, "full", before, saCount(t, db, acme.ID))
	if got := count(t, db, "property_photos", acme.ID); got != 3 {
		t.Errorf("%d photos stored, want 3", got)
	}

	// Sizes, on the platform's default limits.
	cookie = saSignIn(t, p, host, email, password)
	roomy := saCreatedID(t, saPostMultipart(t, p, host, "/site_admin/properties", cookie, saPropertyFields("Roomy")))
	upload = "/site_admin/properties/" + roomy.String() + "/photos"
	before = saCount(t, db, acme.ID)
	refused("a photo declaring 20000 × 300 pixels",
		saPostMultipart(t, p, host, upload, cookie, nil, saFile{"wide.png", saPNG(t, 1)}, saFile{"huge.png", plPNGSized(t, 20000, 300)}),
		"huge.png: the photo is 20000 × 300 pixels; the largest allowed is 12000 pixels a side.")
	refused("a new property with a photo declaring 300 × 20000 pixels",
		saPostMultipart(t, p, host, "/site_admin/properties", cookie, saPropertyFields("Tall"), saFile{"tall.png", plPNGSized(t, 300, 20000)}),
		"tall.png: the photo is 300 × 20000 pixels; the largest allowed is 12000 pixels a side.", "Choose the photos again")
	refused("a photo whose header cannot be read",
		saPostMultipart(t, p, host, upload, cookie, nil, saFile{"cut.png", saPNG(t, 1)[:20]}),
		"cut.png: the file is not a JPEG, PNG, GIF or WebP image.")
	saWantSameCounts(t, "sizes", before, saCount(t, db, acme.ID))
	wantStatus(t, saPostMultipart(t, p, host, upload, cookie, nil, saFile{"big.png", plPNGSized(t, 12000, 12000)}), http.StatusSeeOther)

	// The default count: 50.
	for range 49 {
		if _, err := content.AddPhoto(context.Background(), p.scope(acme), roomy, saPNG(t, 2), p.server.photos); err != nil {
			t.Fatal(err)
		}
	}
	before = saCount(t, db, acme.ID)
	refused("the 51st photo", saPostMultipart(t, p, host, upload, cookie, nil, photos("51.png")...),
		"This property already has 50 photos, the most allowed.")
	saWantSameCounts(t, "51st", before, saCount(t, db, acme.ID))
}
