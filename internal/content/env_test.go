package content_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// env is a migrated throw-away platform: primary, plus shard_1 ... on
// separate servers when asked for.
type env struct {
	cluster *pgtest.Cluster
	set     *shard.Set
	primary *pgxpool.Pool
	n       atomic.Int64
}

func newEnv(t *testing.T, shards int) *env {
	t.Helper()
	e := &env{}
	e.cluster, e.set = pgtest.MigratedCluster(t, shards)
	var err error
	if e.primary, err = e.set.Primary(); err != nil {
		t.Fatal(err)
	}
	return e
}

// site registers a new website on the named shard and returns its scope.
func (e *env) site(t *testing.T, shardName string) tenant.Scope {
	t.Helper()
	n := registry.New{Subdomain: fmt.Sprintf("site%d", e.n.Add(1)), Name: "Site", ShardName: shardName}
	if shardName != shard.Default {
		n.Tier = registry.TierPremium
	}
	w, err := registry.Create(context.Background(), e.primary, n)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tenant.Resolve(e.set, w)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) setStatus(t *testing.T, s tenant.Scope, status string) {
	t.Helper()
	if err := registry.SetStatus(context.Background(), e.primary, s.WebsiteID, status); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every row of the website in every tenant table, as text, so
// a test can tell that a failed write changed nothing.
func snapshot(t *testing.T, s tenant.Scope) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range tenant.Tables {
		q := "SELECT t::text FROM " + pgx.Identifier{table}.Sanitize() + " t WHERE website_id = $1 ORDER BY id"
		rows, err := s.Query(context.Background(), q, s.WebsiteID)
		if err != nil {
			t.Fatal(err)
		}
		out[table], err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func house(title string) content.PropertyInput {
	return content.PropertyInput{Title: title, Visible: true, PropertyType: "House", City: "Valencia", Bedrooms: 3,
		ForSale: true, SalePriceCents: ptr[int64](25_000_000), SaleCurrency: "EUR"}
}

func mustCreate(t *testing.T, s tenant.Scope, in content.PropertyInput) content.Property {
	t.Helper()
	p, err := content.CreateProperty(context.Background(), s, in)
	if err != nil {
		t.Fatalf("CreateProperty(%q): %v", in.Title, err)
	}
	return p
}

func mustPhoto(t *testing.T, s tenant.Scope, p content.Property, data []byte) content.PhotoInfo {
	t.Helper()
	ph, err := content.AddPhoto(context.Background(), s, p.ID, data, photoLimits)
	if err != nil {
		t.Fatalf("AddPhoto: %v", err)
	}
	return ph
}

func mustPage(t *testing.T, s tenant.Scope, in content.PageInput) content.Page {
	t.Helper()
	p, err := content.CreatePage(context.Background(), s, in)
	if err != nil {
		t.Fatalf("CreatePage(%q): %v", in.Title, err)
	}
	return p
}

func mustEnquire(t *testing.T, s tenant.Scope, e content.Enquiry) {
	t.Helper()
	if _, err := content.SubmitEnquiry(context.Background(), s, e); err != nil {
		t.Fatalf("SubmitEnquiry: %v", err)
	}
}

func encoded(t *testing.T, encode func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Black, color.White})
	var b bytes.Buffer
	if err := encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngBytes(t *testing.T) []byte {
	return encoded(t, func(b *bytes.Buffer, i image.Image) error { return png.Encode(b, i) })
}

func jpegBytes(t *testing.T) []byte {
	return encoded(t, func(b *bytes.Buffer, i image.Image) error { return jpeg.Encode(b, i, nil) })
}

func gifBytes(t *testing.T) []byte {
	return encoded(t, func(b *bytes.Buffer, i image.Image) error { return gif.Encode(b, i, nil) })
}

// webpBytes is the header of a lossy WebP key frame of 2 × 2 pixels: what
// the sniffer and the size check look at.
func webpBytes() []byte {
	return append([]byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00\x10\x02\x00\x9d\x01\x2a\x02\x00\x02\x00"), make([]byte, 14)...)
}

// photoLimits are the platform's default limits.
var photoLimits = content.PhotoLimits{PerProperty: 50, MaxSide: 12000}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

func invalidFields(t *testing.T, err error) map[string]string {
	t.Helper()
	var inv *content.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("got error %v, want *InvalidError", err)
	}
	return inv.Fields
}
