package demo

import (
	"bytes"
	"context"
	"errors"
	"image"
	_ "image/jpeg" // registers the format image.Decode reads back
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

func TestMain(m *testing.M) {
	// Set once before any test runs: parallel tests read it.
	account.Cost = bcrypt.MinCost
	os.Exit(m.Run())
}

func TestSeed_FillsTheTenantsShardOnceAndEnsuresTheOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, set := pgtest.MigratedCluster(t, 1)
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	w, err := registry.Create(ctx, primary, registry.New{Subdomain: "acme", Name: "Acme Realty", Tier: registry.TierPremium, ShardName: "shard_1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tenant.Resolve(set, w)
	if err != nil {
		t.Fatal(err)
	}

	var progress []int
	opts := Options{OwnerEmail: "Owner@Acme.localhost", OwnerPassword: "demo-password", Seed: w.ID,
		Progress: func(done, total int) {
			if total != DefaultProperties {
				t.Errorf("progress total %d, want %d", total, DefaultProperties)
			}
			progress = append(progress, done)
		}}
	start := time.Now()
	res, err := Seed(ctx, s, primary, w, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeding %d properties took %v: %+v", DefaultProperties, time.Since(start), res)

	if !res.Created || res.Properties != DefaultProperties || res.Pages != 3 || res.OwnerEmail != "owner@acme.localhost" ||
		res.Photos < DefaultProperties || res.Photos > 3*DefaultProperties || res.Messages < 4 || res.Messages > 6 {
		t.Errorf("result %+v", res)
	}
	if len(progress) != DefaultProperties || progress[0] != 1 || progress[len(progress)-1] != DefaultProperties {
		t.Errorf("progress calls %v", progress)
	}
	counts, err := content.CountAll(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	want := content.Counts{Properties: res.Properties, VisibleProperties: res.Properties - 2, Photos: res.Photos,
		Messages: res.Messages, UnreadMessages: res.Messages, Pages: res.Pages}
	if counts != want {
		t.Errorf("counts on shard_1 %+v, want %+v", counts, want)
	}
	if found, err := tenant.HasRows(ctx, primary, w.ID); err != nil || found {
		t.Errorf("primary holds content of the tenant on shard_1: %v, %v", found, err)
	}

	m, err := account.Authenticate(ctx, primary, w.ID, "owner@acme.localhost", "demo-password")
	if err != nil || m.Role != account.RoleOwner {
		t.Errorf("owner sign-in: %+v, %v", m, err)
	}

	// What a visitor sees: the agency, the pages and references.
	a, err := content.GetAgency(ctx, s)
	if err != nil || a.Name != "Acme Realty" || a.Email != "info@acme.example" || a.Phone == "" || a.Address == "" {
		t.Errorf("agency %+v, %v", a, err)
	}
	for _, slug := range []string{"about", "selling", "privacy"} {
		if p, err := content.GetVisiblePage(ctx, s, slug); err != nil || len(p.Body) < 200 {
			t.Errorf("page %q: %+v, %v", slug, p, err)
		}
	}
	found, err := content.Search(ctx, s, content.Filter{IncludeHidden: true, PerPage: content.MaxPerPage})
	if err != nil {
		t.Fatal(err)
	}
	sale, rent, highlighted, photos := 0, 0, 0, 0
	for _, sp := range found.Properties {
		p, err := content.GetProperty(ctx, s, sp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.Reference, "ACM-") || len(p.Features) < 3 || len(p.Features) > 6 ||
			len(p.Photos) < 1 || len(p.Photos) > 3 || p.Bedrooms > 6 || p.Bathrooms < 1 || p.Bathrooms > 4 ||
			p.Latitude == nil || p.YearBuilt == nil || *p.YearBuilt < 1900 || *p.YearBuilt > 2024 {
			t.Errorf("property %+v", p)
		}
		if p.ForSale {
			sale++
			if c := *p.SalePriceCents; c < 90_000_00 || c > 2_500_000_00 || p.SaleCurrency != "EUR" {
				t.Errorf("%s sells for %d %s", p.Reference, c, p.SaleCurrency)
			}
		}
		if p.ForRent {
			rent++
			if c := *p.RentPriceCentsMonthly; c < 600_00 || c > 6000_00 || p.RentCurrency != "EUR" {
				t.Errorf("%s rents for %d %s", p.Reference, c, p.RentCurrency)
			}
		}
		if p.Highlighted {
			highlighted++
		}
		for _, info := range p.Photos {
			ph, err := content.GetPhoto(ctx, s, info.ID, false)
			if err != nil {
				t.Fatal(err)
			}
			img, format, err := image.Decode(bytes.NewReader(ph.Data))
			if err != nil || format != "jpeg" || img.Bounds() != image.Rect(0, 0, photoWidth, photoHeight) {
				t.Errorf("photo %s of %s: %s, %v", info.ID, p.Reference, format, err)
			}
			if len(ph.Data) > 100<<10 {
				t.Errorf("photo %s of %s is %d bytes", info.ID, p.Reference, len(ph.Data))
			}
			photos++
		}
	}
	if found.Total != DefaultProperties || photos != res.Photos || sale < 15 || rent < 8 || highlighted != 6 {
		t.Errorf("%d properties, %d photos, %d for sale, %d for rent, %d highlighted", found.Total, photos, sale, rent, highlighted)
	}

	// Again, with another password: nothing new, and the owner keeps theirs.
	again, err := Seed(ctx, s, primary, w, Options{OwnerEmail: "owner@acme.localhost", OwnerPassword: "another-password", Seed: w.ID})
	if err != nil {
		t.Fatal(err)
	}
	if again != (Result{OwnerEmail: "owner@acme.localhost"}) {
		t.Errorf("second seed %+v", again)
	}
	if after, err := content.CountAll(ctx, s); err != nil || after != counts {
		t.Errorf("counts after the second seed %+v, %v; want %+v", after, err, counts)
	}
	if _, err := account.Authenticate(ctx, primary, w.ID, "owner@acme.localhost", "demo-password"); err != nil {
		t.Errorf("owner's password after the second seed: %v", err)
	}
	if _, err := account.Authenticate(ctx, primary, w.ID, "owner@acme.localhost", "another-password"); !errors.Is(err, account.ErrBadCredentials) {
		t.Errorf("second seed changed the owner's password: %v", err)
	}
}

func TestNewPlan_IsDeterministicPerSeed(t *testing.T) {
	t.Parallel()
	w := registry.Website{ID: 7, Subdomain: "prestige", Name: "Prestige Estates"}
	a, b := newPlan(w, 7, DefaultProperties), newPlan(w, 7, DefaultProperties)
	if !reflect.DeepEqual(a, b) {
		t.Error("two plans from one seed differ")
	}
	other := newPlan(w, 8, DefaultProperties)
	if reflect.DeepEqual(a.properties, other.properties) {
		t.Error("plans from seeds 7 and 8 are the same")
	}
	for _, p := range a.properties {
		if err := p.in.Validate(); err != nil {
			t.Errorf("%s: %v", p.in.Reference, err)
		}
	}
	if a.properties[0].in.Reference != "PRE-0001" {
		t.Errorf("first reference %q", a.properties[0].in.Reference)
	}
	in := map[string]bool{}
	for _, p := range a.properties {
		in[p.in.City] = true
	}
	if len(in) > citiesPerTenant {
		t.Errorf("properties in %d cities", len(in))
	}
	for _, c := range cities {
		if len(c.streets) == 0 || len(c.areas) != len(c.streets) || len(c.postcodes) != len(c.streets) {
			t.Errorf("%s: %d streets, %d areas, %d postcodes", c.name, len(c.streets), len(c.areas), len(c.postcodes))
		}
	}
}

func TestReferencePrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"acme": "ACM", "my-site": "MYS", "ab": "AB", "x-1-y": "X1Y", "---": "PWB"} {
		if got := referencePrefix(in); got != want {
			t.Errorf("referencePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDrawPhotos_AreSmallDeterministicJPEGs(t *testing.T) {
	t.Parallel()
	a, err := drawPhotos(1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := drawPhotos(1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("photos from one seed differ")
	}
	for k := range a {
		for v, data := range a[k] {
			if ct, err := content.PhotoContentType(data); err != nil || ct != "image/jpeg" || len(data) > 100<<10 {
				t.Errorf("kind %d variant %d: %s, %d bytes, %v", k, v, ct, len(data), err)
			}
		}
	}
}
