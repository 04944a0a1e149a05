package demo

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
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
	// Which building and shot each photo the seed can write is.
	drawn, err := drawPhotos(w.ID)
	if err != nil {
		t.Fatal(err)
	}
	type shotOf struct{ kind, building, shot int }
	shots := map[string]shotOf{}
	for k := range drawn.shots {
		for b := range drawn.shots[k] {
			for sh, data := range drawn.shots[k][b] {
				shots[string(data)] = shotOf{k, b, sh}
			}
		}
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
		var building shotOf
		for i, info := range p.Photos {
			ph, err := content.GetPhoto(ctx, s, info.ID, false)
			if err != nil {
				t.Fatal(err)
			}
			// A listing's photos are the shots of one building, in order.
			got, ok := shots[string(ph.Data)]
			if !ok || got.shot != i || i > 0 && (got.kind != building.kind || got.building != building.building) {
				t.Errorf("photo %d of %s is %+v (drawn: %v), want shot %d of the building of its first photo %+v",
					i+1, p.Reference, got, ok, i, building)
			}
			if i == 0 {
				building = got
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
		// One building per listing, of the listing's kind.
		if p.building < 0 || p.building >= buildingsPerKind || p.photos < 1 || p.photos > shotsPerBuilding ||
			p.kind != typeNamed(t, p.in.PropertyType).kind {
			t.Errorf("%s: a %s with %d photos of building %d of kind %d", p.in.Reference, p.in.PropertyType, p.photos, p.building, p.kind)
		}
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

func typeNamed(t *testing.T, name string) propertyType {
	t.Helper()
	for _, pt := range propertyTypes {
		if pt.name == name {
			return pt
		}
	}
	t.Fatalf("no property type %q", name)
	return propertyType{}
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
	for k := range a.shots {
		for b := range a.shots[k] {
			for sh, data := range a.shots[k][b] {
				if ct, err := content.PhotoContentType(data); err != nil || ct != "image/jpeg" || len(data) > 100<<10 {
					t.Errorf("kind %d building %d shot %d: %s, %d bytes, %v", k, b, sh, ct, len(data), err)
				}
			}
		}
	}
}

// The shots of a building show that building, each from elsewhere or at
// another time: its wall, in its own colour, covers much of every shot,
// and the wall of another colour is in none (beyond a few pixels where a
// close-up blends two colours into it).
func TestDrawShot_ShotsOfABuildingShowIt(t *testing.T) {
	t.Parallel()
	const seed = 3
	for k := range numKinds {
		var looks [buildingsPerKind]look
		for b := range looks {
			looks[b] = design(buildingRand(seed, k, b), k)
		}
		for b, l := range looks {
			var shots [shotsPerBuilding]*image.RGBA
			for sh := range shots {
				shots[sh] = drawShot(l, sh, shotRand(seed, k, b, sh))
				colours := map[color.RGBA]int{}
				for i := 0; i < len(shots[sh].Pix); i += 4 {
					p := shots[sh].Pix[i : i+4 : i+4]
					colours[color.RGBA{p[0], p[1], p[2], p[3]}]++
				}
				if n := colours[l.wall]; n < photoWidth*photoHeight/50 {
					t.Errorf("kind %d building %d shot %d: %d pixels of its wall, want at least 2%% of the photo", k, b, sh, n)
				}
				for ob, other := range looks {
					if other.wall != l.wall && colours[other.wall] > photoWidth*photoHeight/200 {
						t.Errorf("kind %d building %d shot %d shows building %d's wall", k, b, sh, ob)
					}
				}
			}
			for i := range shots {
				for j := range i {
					if bytes.Equal(shots[i].Pix, shots[j].Pix) {
						t.Errorf("kind %d building %d: shots %d and %d are the same picture", k, b, j, i)
					}
				}
			}
		}
	}
}
