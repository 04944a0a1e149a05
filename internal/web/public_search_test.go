package web

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

var (
	searchFormRE  = regexp.MustCompile(`(?s)<form class="search".*?</form>`)
	inputNameRE   = regexp.MustCompile(`<(?:input|select)[^>]* name="([^"]+)"`)
	cityInputRE   = regexp.MustCompile(`<input name="city" list="search-cities" value="([^"]*)"`)
	cityOptionsRE = regexp.MustCompile(`(?s)<datalist id="search-cities">(.*?)</datalist>`)
)

// searchFormOf returns the search form of a page, failing the test when it
// has none.
func searchFormOf(t *testing.T, r response) string {
	t.Helper()
	f := searchFormRE.FindString(r.Body)
	if f == "" {
		t.Fatalf("%s: no search form:\n%s", r.Request.URL, excerpt(r.Body))
	}
	return f
}

func formFieldNames(form string) []string {
	var names []string
	for _, m := range inputNameRE.FindAllStringSubmatch(form, -1) {
		names = append(names, m[1])
	}
	return names
}

// The home page, /buy and /rent have one search form with the same fields;
// the city a visitor types on the home page is matched without regard to
// case, accents or its end, and is still in the form on the results page.
func TestPublic_OneSearchFormKeepsTheCityTyped(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	sc := p.scope(p.tenant("casa", "shard_1"))
	const host = "casa.localhost"
	for _, l := range []struct{ title, city string }{
		{"Alfama flat", "Lisbon"}, {"Belém house", "lisbon"}, {"Paulista loft", "São Paulo"}, {"Ribeira flat", "Porto"},
	} {
		listing(t, sc, l.title, func(in *content.PropertyInput) { in.City = l.city })
	}
	listing(t, sc, "Garden studio", func(in *content.PropertyInput) {
		in.City, in.Bedrooms, in.PropertyType = "Lisbon", 0, "Studio"
		in.ForSale, in.SalePriceCents, in.SaleCurrency = false, nil, ""
		in.ForRent, in.RentPriceCentsMonthly, in.RentCurrency = true, cents(1_250_00), "EUR"
	})

	home := p.get(host, "/")
	wantStatus(t, home, http.StatusOK)
	form := searchFormOf(t, home)
	for _, want := range []string{`action="/buy"`, `formaction="/rent"`, "Min. bedrooms", `placeholder="Any city"`} {
		if !strings.Contains(form, want) {
			t.Errorf("the home page's search form lacks %q:\n%s", want, form)
		}
	}
	// The cities are offered once each, as most of their homes spell them.
	if m := cityOptionsRE.FindStringSubmatch(form); m == nil ||
		m[1] != `<option value="Lisbon"><option value="Porto"><option value="São Paulo">` {
		t.Errorf("cities offered: %q", m)
	}
	wantFields := []string{"city", "type", "bedrooms", "min_price", "max_price"}
	if got := formFieldNames(form); !slices.Equal(got, wantFields) {
		t.Errorf("the home page's search fields %v, want %v", got, wantFields)
	}
	if strings.Contains(home.Body, "Studio · 1 bath · Studio") || !strings.Contains(home.Body, "Lisbon · Studio · 1 bath") ||
		!strings.Contains(home.Body, "€1,250") || !strings.Contains(home.Body, "€300,000") {
		t.Errorf("the home page's cards should read \"Lisbon · Studio · 1 bath\", €1,250 and €300,000:\n%s", excerpt(home.Body))
	}

	for _, tc := range []struct {
		path  string
		typed string
		want  []string
		not   []string
	}{
		{"/buy?city=lisbon", "lisbon", []string{"2 properties", "Alfama flat", "Belém house"}, []string{"Paulista loft", "Garden studio"}},
		{"/buy?city=LISB&bedrooms=&min_price=&max_price=&type=", "LISB", []string{"2 properties", "Alfama flat", "Belém house"}, []string{"Ribeira flat"}},
		{"/buy?city=" + url.QueryEscape("sao paulo"), "sao paulo", []string{"1 property", "Paulista loft"}, []string{"Alfama flat"}},
		{"/buy?city=" + url.QueryEscape("SÃO"), "SÃO", []string{"1 property", "Paulista loft"}, nil},
		{"/buy?city=isbon", "isbon", []string{"0 properties", "No property matches"}, []string{"Alfama flat"}},
		{"/rent?city=Lisbon&bedrooms=0", "Lisbon", []string{"1 property", "Garden studio"}, []string{"Alfama flat"}},
	} {
		r := p.get(host, tc.path)
		wantStatus(t, r, http.StatusOK)
		bodyHas(t, r, tc.want...)
		bodyLacks(t, r, tc.not...)
		form := searchFormOf(t, r)
		if got := formFieldNames(form); !slices.Equal(got, wantFields) {
			t.Errorf("%s: search fields %v, want those of the home page %v", tc.path, got, wantFields)
		}
		// The city typed is what the form shows, not "Any".
		if m := cityInputRE.FindStringSubmatch(form); m == nil || m[1] != tc.typed {
			t.Errorf("%s: the city input shows %q, want %q", tc.path, m, tc.typed)
		}
	}
	// The form's own button searches the page's listing; the other one the
	// other listing.
	rent := searchFormOf(t, p.get(host, "/rent?city=Porto"))
	if !strings.Contains(rent, `action="/rent"`) || !strings.Contains(rent, `formaction="/buy"`) {
		t.Errorf("the search form on /rent:\n%s", rent)
	}
	// A refused search keeps what was typed and says what is wrong.
	bad := p.get(host, "/buy?city=Lisbon&bedrooms=-1")
	wantStatus(t, bad, http.StatusBadRequest)
	bodyHas(t, bad, "Bedrooms must be a whole number", `value="Lisbon"`, `value="-1"`)
}

// statementLog reads what pwb's own connections ask each database server
// of a test platform, from the servers' logs with log_statement = all.
type statementLog struct {
	t     *testing.T
	p     *platform
	marks []int64
}

// appStatementRE is a logged statement of a pwb connection (application
// name pwb): "statement: ..." for the simple protocol, "execute NAME: ..."
// for the extended one. A statement prepared earlier is logged only when it
// runs, so each line is one statement run.
var appStatementRE = regexp.MustCompile(`\bapp=pwb LOG:  (?:statement|execute [^:]*): (.*)$`)

func logStatements(t *testing.T, p *platform) *statementLog {
	t.Helper()
	for _, srv := range p.cluster.Servers {
		for _, sql := range []string{"ALTER SYSTEM SET log_statement = 'all'",
			"ALTER SYSTEM SET log_line_prefix = '%m [%p] app=%a '", "SELECT pg_reload_conf()"} {
			pgtest.Exec(t, srv.URL("postgres"), sql)
		}
	}
	time.Sleep(300 * time.Millisecond) // let every backend take the reload
	return &statementLog{t: t, p: p}
}

// mark starts counting from the end of each server's log.
func (l *statementLog) mark() {
	l.t.Helper()
	l.marks = l.marks[:0]
	for _, srv := range l.p.cluster.Servers {
		st, err := os.Stat(srv.LogFile())
		if err != nil {
			l.t.Fatal(err)
		}
		l.marks = append(l.marks, st.Size())
	}
}

// since returns the statements pwb ran since mark, by shard name (primary
// is "default"), leaving out the pings with which the pool checks a
// connection that sat idle for a second before handing it out: they are
// the pool's, not the page's.
func (l *statementLog) since() map[string][]string {
	l.t.Helper()
	out := map[string][]string{}
	for i, srv := range l.p.cluster.Servers {
		name := shard.Default
		if i > 0 {
			name = fmt.Sprintf("shard_%d", i)
		}
		f, err := os.Open(srv.LogFile())
		if err != nil {
			l.t.Fatal(err)
		}
		sc := bufio.NewScanner(io.NewSectionReader(f, l.marks[i], 1<<40))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := appStatementRE.FindStringSubmatch(sc.Text()); m != nil && strings.TrimSpace(m[1]) != "-- ping" {
				out[name] = append(out[name], m[1])
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			l.t.Fatal(err)
		}
	}
	return out
}

// The statements a warm request runs on the tenant's shard and on primary,
// counted in the servers' statement logs: the page's own reads, and any
// registry or session read on primary. Warm means the registry cache holds
// the tenant (it keeps an entry 5 seconds) and the pool's connections are
// open, as for every visitor after the first.
func TestPublic_HomeAndSearchRunFewStatements(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	sc := p.scope(p.tenant("casa", "shard_1"))
	const host = "casa.localhost"
	for i := range 20 {
		listing(t, sc, fmt.Sprintf("Home %02d", i), func(in *content.PropertyInput) {
			in.Highlighted = i%5 == 0
			if i%3 == 0 {
				in.ForRent, in.RentPriceCentsMonthly, in.RentCurrency = true, cents(900_00), "EUR"
			}
		})
	}
	if err := content.SaveAgency(t.Context(), sc, content.Agency{Name: "Casa Lda", Phone: "+351 21 000 0000"}); err != nil {
		t.Fatal(err)
	}
	for _, slug := range []string{"about", "terms"} {
		if _, err := content.CreatePage(t.Context(), sc, content.PageInput{Slug: slug, Title: slug, Visible: true}); err != nil {
			t.Fatal(err)
		}
	}
	log := logStatements(t, p)

	for _, tc := range []struct {
		path  string
		most  int
		shows []string
	}{
		{"/", 4, []string{"Featured", "Home 15", "Latest to rent", `href="/p/terms"`, "Casa Lda"}},
		{"/buy?page=2", 3, []string{"20 properties", "Page 2 of 2", "Home 00"}},
		{"/rent?city=lis&bedrooms=2", 3, []string{"7 properties"}},
	} {
		wantStatus(t, p.get(host, tc.path), http.StatusOK) // warms the cache and the connections
		log.mark()
		r := p.get(host, tc.path)
		wantStatus(t, r, http.StatusOK)
		bodyHas(t, r, tc.shows...)
		ran := log.since()
		total := len(ran[shard.Default]) + len(ran["shard_1"])
		t.Logf("%s ran %d statements on shard_1 and %d on primary", tc.path, len(ran["shard_1"]), len(ran[shard.Default]))
		if len(ran["shard_1"]) == 0 {
			t.Fatalf("%s: no statement logged on shard_1; is statement logging working?", tc.path)
		}
		if total > tc.most {
			t.Errorf("%s ran %d statements, want at most %d:\nshard_1: %s\nprimary: %s", tc.path, total, tc.most,
				strings.Join(ran["shard_1"], "\n  "), strings.Join(ran[shard.Default], "\n  "))
		}
		for _, st := range ran["shard_1"] {
			if strings.HasPrefix(strings.TrimSpace(st), "SELECT count(*) FROM properties") {
				t.Errorf("%s counts its results in a statement of their own: %s", tc.path, st)
			}
		}
	}
}
