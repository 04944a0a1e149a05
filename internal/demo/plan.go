package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

// plan is everything Seed writes, decided up front from the website and the
// seed alone, so the same seed always gives the same site and the writes
// are a plain loop.
type plan struct {
	agency     content.Agency
	pages      []content.PageInput
	properties []plannedProperty
	enquiries  []plannedEnquiry
}

type plannedProperty struct {
	in       content.PropertyInput
	kind     photoKind
	building int // which building of kind its photos show
	photos   int // how many: its first shots, from 1 to shotsPerBuilding
}

type plannedEnquiry struct {
	e        content.Enquiry
	property int // index into plan.properties, or -1 for a general enquiry
}

// city is a place demo properties are in. Prices are per square metre.
type city struct {
	name, region, country  string
	lat, lng               float64
	coastal                bool
	salePerSqm, rentPerSqm float64
	numberFirst            bool   // "14 Harcourt Street" rather than "Calle Larios 14"
	phone                  string // # is a random digit
	// Parallel lists: a street, its neighbourhood and its postcode.
	streets, areas, postcodes []string
}

var cities = []city{
	{"Valencia", "Valencian Community", "Spain", 39.4699, -0.3763, true, 2600, 13, false, "+34 963 ### ###",
		[]string{"Carrer de Colón", "Avinguda del Port", "Carrer de la Pau", "Gran Via del Marqués del Túria"},
		[]string{"Ruzafa", "El Carmen", "Benimaclet", "El Cabanyal"}, []string{"46004", "46001", "46020", "46011"}},
	{"Málaga", "Andalusia", "Spain", 36.7213, -4.4214, true, 3200, 14, false, "+34 952 ### ###",
		[]string{"Calle Larios", "Paseo de Reding", "Calle Victoria", "Avenida de Andalucía"},
		[]string{"Soho", "La Malagueta", "El Limonar", "Pedregalejo"}, []string{"29001", "29016", "29012", "29017"}},
	{"Alicante", "Valencian Community", "Spain", 38.3452, -0.4810, true, 2200, 11, false, "+34 965 ### ###",
		[]string{"Calle Mayor", "Avenida de Maisonnave", "Calle San Fernando", "Calle Castaños"},
		[]string{"Centro", "San Juan Playa", "Benalúa", "Cabo de las Huertas"}, []string{"03001", "03540", "03007", "03002"}},
	{"Barcelona", "Catalonia", "Spain", 41.3874, 2.1686, true, 4600, 21, false, "+34 932 ### ###",
		[]string{"Carrer de Mallorca", "Passeig de Sant Joan", "Carrer de Verdi", "Carrer del Consell de Cent"},
		[]string{"Eixample", "Gràcia", "Poblenou", "Sant Gervasi"}, []string{"08009", "08012", "08005", "08021"}},
	{"Lisbon", "Lisbon District", "Portugal", 38.7223, -9.1393, true, 5000, 20, false, "+351 21 ### ####",
		[]string{"Rua Augusta", "Avenida da Liberdade", "Rua da Rosa", "Rua de São Bento"},
		[]string{"Alfama", "Príncipe Real", "Campo de Ourique", "Belém"}, []string{"1100-048", "1250-096", "1200-384", "1400-038"}},
	{"Porto", "Porto District", "Portugal", 41.1579, -8.6291, true, 3300, 15, false, "+351 22 ### ####",
		[]string{"Rua de Santa Catarina", "Rua de Cedofeita", "Avenida da Boavista", "Rua das Flores"},
		[]string{"Ribeira", "Foz do Douro", "Boavista", "Bonfim"}, []string{"4000-447", "4050-262", "4100-119", "4300-040"}},
	{"Nice", "Provence-Alpes-Côte d'Azur", "France", 43.7102, 7.2620, true, 5400, 20, true, "+33 4 93 ## ## ##",
		[]string{"Rue de France", "Boulevard Gambetta", "Avenue Jean Médecin", "Rue Bonaparte"},
		[]string{"Vieux Nice", "Cimiez", "Le Port", "Mont Boron"}, []string{"06000", "06100", "06300", "06000"}},
	{"Bordeaux", "Nouvelle-Aquitaine", "France", 44.8378, -0.5792, false, 4700, 16, true, "+33 5 56 ## ## ##",
		[]string{"Rue Sainte-Catherine", "Cours de l'Intendance", "Rue Notre-Dame", "Quai des Chartrons"},
		[]string{"Chartrons", "Saint-Michel", "Caudéran", "La Bastide"}, []string{"33000", "33800", "33200", "33100"}},
	{"Florence", "Tuscany", "Italy", 43.7696, 11.2558, false, 4300, 18, false, "+39 055 ### ####",
		[]string{"Via dei Serragli", "Via Gioberti", "Borgo Pinti", "Viale dei Mille"},
		[]string{"Oltrarno", "Santo Spirito", "Campo di Marte", "San Frediano"}, []string{"50125", "50121", "50137", "50124"}},
	{"Bologna", "Emilia-Romagna", "Italy", 44.4949, 11.3426, false, 3600, 15, false, "+39 051 ### ####",
		[]string{"Via Saragozza", "Via Mazzini", "Strada Maggiore", "Via del Pratello"},
		[]string{"Santo Stefano", "Bolognina", "Saragozza", "San Vitale"}, []string{"40123", "40129", "40125", "40122"}},
	{"Dublin", "Leinster", "Ireland", 53.3498, -6.2603, true, 5600, 24, true, "+353 1 ### ####",
		[]string{"Harcourt Street", "Pembroke Road", "Leeson Street", "Grove Park"},
		[]string{"Ranelagh", "Rathmines", "Drumcondra", "Ballsbridge"}, []string{"D02 X285", "D04 N7R8", "D06 Y4K2", "D09 F6X3"}},
	{"Amsterdam", "North Holland", "Netherlands", 52.3676, 4.9041, false, 7000, 25, false, "+31 20 ### ####",
		[]string{"Prinsengracht", "Overtoom", "Czaar Peterstraat", "Van Baerlestraat"},
		[]string{"Jordaan", "De Pijp", "Oud-West", "Oost"}, []string{"1016 GV", "1054 HN", "1018 NX", "1071 AP"}},
}

// citiesPerTenant is how many of cities one tenant's properties are in.
const citiesPerTenant = 4

// propertyType is a kind of property with what is typical of it.
type propertyType struct {
	name           string
	weight         int // relative frequency
	kind           photoKind
	minBeds        int
	maxBeds        int
	baseArea       float64 // m² on top of the bedrooms
	priceFactor    float64
	oldest, newest int // year built
	adjectives     []string
}

var propertyTypes = []propertyType{
	{"Apartment", 30, kindBuilding, 1, 3, 25, 1.0, 1950, 2024, []string{"Bright", "Modern", "Renovated", "Sunny", "Stylish", "Spacious"}},
	{"House", 18, kindHouse, 2, 5, 40, 1.0, 1900, 2024, []string{"Spacious", "Family", "Detached", "Renovated", "Classic", "Light-filled"}},
	{"Villa", 10, kindHouse, 3, 6, 80, 1.3, 1960, 2024, []string{"Elegant", "Luxury", "Contemporary", "Secluded", "Stunning"}},
	{"Townhouse", 12, kindHouse, 2, 4, 35, 0.95, 1900, 2024, []string{"Charming", "Elegant", "Restored", "Modern", "Characterful"}},
	{"Studio", 10, kindBuilding, 0, 0, 28, 1.1, 1950, 2024, []string{"Cosy", "Bright", "Compact", "Smart", "Renovated"}},
	{"Penthouse", 8, kindBuilding, 2, 4, 45, 1.35, 1970, 2024, []string{"Stunning", "Exclusive", "Light-filled", "Designer", "Elegant"}},
	{"Cottage", 12, kindHouse, 1, 3, 30, 0.85, 1900, 1965, []string{"Charming", "Cosy", "Rustic", "Pretty", "Quaint"}},
}

// Features and which kinds of property they suit.
var (
	anyFeatures      = []string{"Balcony", "Air conditioning", "Terrace", "Storage room", "Central heating", "Double glazing", "Fitted kitchen", "Walk-in wardrobe", "Home office", "Underfloor heating"}
	houseFeatures    = []string{"Garden", "Fireplace", "Swimming pool", "Solar panels", "Barbecue area"}
	buildingFeatures = []string{"Lift", "Concierge", "Communal pool", "Gym"}
)

var locationPhrases = []string{"near the park", "in a quiet street", "close to schools", "near the station",
	"with open views", "close to shops and cafés"}

var coastalPhrases = []string{"close to the beach", "a short walk from the sea"}

// person is someone who sends a demo enquiry. The addresses are on the
// domains reserved for examples, so no mail can ever reach a real person.
type person struct{ name, email, phone string }

var people = []person{
	{"María López", "maria.lopez@example.com", "+34 612 345 678"},
	{"James O'Connor", "james.oconnor@example.net", ""},
	{"Sophie Martin", "sophie.martin@example.org", "+33 6 12 34 56 78"},
	{"Luca Bianchi", "luca.bianchi@example.com", "+39 347 123 4567"},
	{"Anna de Vries", "anna.devries@example.net", "+31 6 1234 5678"},
	{"Tomás Ferreira", "tomas.ferreira@example.org", ""},
	{"Emma Schmidt", "emma.schmidt@example.com", "+49 151 2345 6789"},
	{"Oliver Bennett", "oliver.bennett@example.net", "+44 7700 900123"},
	{"Inès Dubois", "ines.dubois@example.org", ""},
	{"Erik Johansson", "erik.johansson@example.com", "+46 70 123 45 67"},
}

// newPlan decides the demo content of website w.
func newPlan(w registry.Website, seed int64, properties int) plan {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed_de70))
	var pl plan

	picked := make([]city, 0, citiesPerTenant)
	for _, i := range r.Perm(len(cities))[:citiesPerTenant] {
		picked = append(picked, cities[i])
	}
	home, spot := picked[0], r.IntN(len(picked[0].streets))
	pl.agency = content.Agency{
		Name:    w.Name,
		Email:   "info@" + w.Subdomain + ".example",
		Phone:   digits(r, home.phone),
		Address: address(r, home, spot) + ", " + home.postcodes[spot] + " " + home.name + ", " + home.country,
	}
	pl.pages = pages(r, w.Name, pl.agency.Email, picked)

	prefix := referencePrefix(w.Subdomain)
	listings := listingMix(r, properties)
	order := r.Perm(properties)
	hidden := min(2, properties/3)
	highlighted := min(6, max(1, properties/5), properties-hidden)
	for i := range properties {
		p := newProperty(r, pick(r, picked), listings[i])
		p.in.Reference = fmt.Sprintf("%s-%04d", prefix, i+1)
		p.in.Visible = !slices.Contains(order[:hidden], i)
		p.in.Highlighted = slices.Contains(order[hidden:hidden+highlighted], i)
		pl.properties = append(pl.properties, p)
	}
	pl.enquiries = enquiries(r, pl.properties, picked)
	return pl
}

// Listings a property can have.
const (
	forSale = iota
	forRent
	forBoth
)

// listingMix returns n listings, about 60% for sale, 30% for rent and the
// rest both, shuffled. Exact shares rather than a coin per property keep a
// small demo from coming out all one kind.
func listingMix(r *rand.Rand, n int) []int {
	sale, rent := (n*6+5)/10, (n*3+5)/10
	out := make([]int, n)
	for i := range out {
		switch {
		case i < sale:
			out[i] = forSale
		case i < sale+rent:
			out[i] = forRent
		default:
			out[i] = forBoth
		}
	}
	r.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func newProperty(r *rand.Rand, c city, listing int) plannedProperty {
	t := pickType(r)
	beds := between(r, t.minBeds, t.maxBeds)
	baths := 1
	if beds > 0 {
		baths = min(4, (beds+1)/2+r.IntN(2))
	}
	garages := 0
	switch {
	case t.name == "Villa":
		garages = between(r, 1, 2)
	case t.kind == kindHouse:
		garages = r.IntN(3)
	case r.IntN(5) < 2:
		garages = 1
	}
	area := math.Round(t.baseArea + float64(beds)*float64(between(r, 16, 24)) + float64(r.IntN(15)))
	year := between(r, t.oldest, t.newest)
	// Within a few kilometres of the centre.
	lat := c.lat + (r.Float64()-0.5)*0.06
	lng := c.lng + (r.Float64()-0.5)*0.08
	spot := r.IntN(len(c.streets))
	neighbourhood := c.areas[spot]

	in := content.PropertyInput{
		Title:        title(r, t, beds, c, neighbourhood),
		Address:      address(r, c, spot),
		City:         c.name,
		Region:       c.region,
		PostalCode:   c.postcodes[spot],
		Country:      c.country,
		Latitude:     &lat,
		Longitude:    &lng,
		Bedrooms:     beds,
		Bathrooms:    baths,
		Garages:      garages,
		FloorAreaSqm: &area,
		YearBuilt:    &year,
		PropertyType: t.name,
		Features:     features(r, t, c, garages),
	}
	jitter := 0.8 + 0.4*r.Float64()
	if listing == forSale || listing == forBoth {
		euros := clamp(area*c.salePerSqm*t.priceFactor*jitter, 90_000, 2_500_000)
		cents := int64(math.Round(euros/5000)*5000) * 100
		in.ForSale, in.SalePriceCents, in.SaleCurrency = true, &cents, "EUR"
	}
	if listing == forRent || listing == forBoth {
		euros := clamp(area*c.rentPerSqm*t.priceFactor*jitter, 600, 6000)
		cents := int64(math.Round(euros/50)*50) * 100
		in.ForRent, in.RentPriceCentsMonthly, in.RentCurrency = true, &cents, "EUR"
	}
	in.Description = description(r, in, t, c, neighbourhood)

	return plannedProperty{in: in, kind: t.kind, building: r.IntN(buildingsPerKind), photos: between(r, 1, shotsPerBuilding)}
}

func pickType(r *rand.Rand) propertyType {
	total := 0
	for _, t := range propertyTypes {
		total += t.weight
	}
	n := r.IntN(total)
	for _, t := range propertyTypes {
		if n < t.weight {
			return t
		}
		n -= t.weight
	}
	panic("unreachable")
}

func clamp(v, lo, hi float64) float64 { return min(hi, max(lo, v)) }

// title reads like an agent's headline: "Bright 3-bedroom apartment near
// the park".
func title(r *rand.Rand, t propertyType, beds int, c city, neighbourhood string) string {
	adj := pick(r, t.adjectives)
	kind := strings.ToLower(t.name)
	phrases := locationPhrases
	if c.coastal {
		phrases = append(slices.Clip(phrases), coastalPhrases...)
	}
	rooms := kind
	if beds > 0 {
		rooms = fmt.Sprintf("%d-bedroom %s", beds, kind)
	}
	switch r.IntN(3) {
	case 0:
		return fmt.Sprintf("%s %s %s", adj, rooms, pick(r, phrases))
	case 1:
		return fmt.Sprintf("%s %s in %s", adj, rooms, neighbourhood)
	default:
		return fmt.Sprintf("%s %s in %s, %s", adj, kind, neighbourhood, c.name)
	}
}

func description(r *rand.Rand, in content.PropertyInput, t propertyType, c city, neighbourhood string) string {
	kind := strings.ToLower(t.name)
	adj := strings.ToLower(pick(r, t.adjectives))
	var first string
	if in.Bedrooms == 0 {
		first = fmt.Sprintf("%s %s %s of %.0f m² in %s, ideal as a first home or a pied-à-terre in %s.",
			article(adj), adj, kind, *in.FloorAreaSqm, neighbourhood, c.name)
	} else {
		first = fmt.Sprintf("%s %s %s in %s with %d %s and %d %s, offering %.0f m² of living space.",
			article(adj), adj, kind, neighbourhood, in.Bedrooms, plural(in.Bedrooms, "bedroom"),
			in.Bathrooms, plural(in.Bathrooms, "bathroom"), *in.FloorAreaSqm)
	}
	f := make([]string, 0, 3)
	for _, name := range in.Features[:min(3, len(in.Features))] {
		f = append(f, strings.ToLower(name))
	}
	second := fmt.Sprintf("Highlights include %s and %s.", strings.Join(f[:len(f)-1], ", "), f[len(f)-1])
	closing := []string{
		fmt.Sprintf("Built in %d and well maintained, it is ready to move into.", *in.YearBuilt),
		"Shops, cafés and public transport are all within a short walk.",
		"Viewings can be arranged at short notice, including evenings and weekends.",
		fmt.Sprintf("%s is one of the most sought-after parts of %s, so early viewing is recommended.", neighbourhood, c.name),
	}
	if c.coastal {
		closing = append(closing, "The beach is only a few minutes away.")
	}
	if r.IntN(3) == 0 {
		return first + " " + second
	}
	return first + " " + second + " " + pick(r, closing)
}

func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "An"
	}
	return "A"
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// features returns 3 to 6 features that suit the property: a pool for
// many villas, parking when it has a garage, no lift in a cottage.
func features(r *rand.Rand, t propertyType, c city, garages int) []string {
	var must []string
	if garages > 0 {
		must = append(must, "Parking")
	}
	if t.name == "Villa" && r.IntN(5) < 3 {
		must = append(must, "Swimming pool")
	}
	if t.name == "Penthouse" {
		must = append(must, "Terrace")
	}
	candidates := slices.Clone(anyFeatures)
	if t.kind == kindHouse {
		candidates = append(candidates, houseFeatures...)
	} else {
		candidates = append(candidates, buildingFeatures...)
	}
	if c.coastal {
		candidates = append(candidates, "Sea view")
	}
	out := must
	want := between(r, 3, 6)
	for _, i := range r.Perm(len(candidates)) {
		if len(out) >= want {
			break
		}
		if !slices.Contains(out, candidates[i]) {
			out = append(out, candidates[i])
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// address is a house number on the street at index spot of c.
func address(r *rand.Rand, c city, spot int) string {
	n := between(r, 1, 120)
	if c.numberFirst {
		return fmt.Sprintf("%d %s", n, c.streets[spot])
	}
	return fmt.Sprintf("%s %d", c.streets[spot], n)
}

// digits replaces each # of format with a random digit.
func digits(r *rand.Rand, format string) string {
	var b strings.Builder
	for _, c := range format {
		if c == '#' {
			b.WriteByte(byte('0' + r.IntN(10)))
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// referencePrefix is the first three letters or digits of the subdomain,
// upper-case: "acme" gives ACM, so references read "ACM-0001".
func referencePrefix(subdomain string) string {
	var b strings.Builder
	for _, c := range subdomain {
		if b.Len() == 3 {
			break
		}
		if c < unicode.MaxASCII && (unicode.IsLetter(c) || unicode.IsDigit(c)) {
			b.WriteRune(unicode.ToUpper(c))
		}
	}
	if b.Len() == 0 {
		return "PWB"
	}
	return b.String()
}

func listOf(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func pages(r *rand.Rand, agency, email string, cs []city) []content.PageInput {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.name
	}
	founded := between(r, 1978, 2012)
	team := between(r, 6, 25)
	return []content.PageInput{
		{Slug: "about", Title: "About us", Visible: true, NavOrder: 1, Body: fmt.Sprintf(
			`%[1]s has been helping people buy, sell and rent homes since %[2]d. What started as a small office with two desks and a lot of enthusiasm is today a team of %[3]d agents working across %[4]s.

We believe that finding a home should feel exciting, not exhausting. That is why every client gets one agent who knows the neighbourhoods, answers the phone and stays with them from the first viewing to the handing over of the keys.

Our agents live in the areas they cover. They know which streets are quiet at night, which schools have waiting lists and where the best coffee is. Drop by one of our offices or send us a message: we will be glad to help.`,
			agency, founded, team, listOf(names))},
		{Slug: "selling", Title: "Selling with us", Visible: true, NavOrder: 2, Body: fmt.Sprintf(
			`Selling a home is one of the biggest decisions you will make, and we want it to go smoothly. It starts with a free, no-obligation valuation based on recent sales in your street, not on guesswork.

Once you decide to go ahead, we take professional photographs, write a description that does your home justice and publish it here and on the main property portals within days. Every enquiry is answered the same day, and we accompany every viewing ourselves.

When offers come in, we check the buyer's finances, negotiate on your behalf and work with your notary or solicitor until completion. Our fee is agreed in writing at the start, and you pay nothing unless your home is sold.

To book a valuation, write to %s or use the contact form.`, email)},
		{Slug: "privacy", Title: "Privacy", Visible: true, NavOrder: 9, Body: fmt.Sprintf(
			`%[1]s respects your privacy. This page explains what we do with the personal data you give us.

When you send an enquiry we keep your name, email address, phone number and message so that we can answer you and, if you ask us to, tell you about properties that match what you are looking for. We do not sell your data or share it with anyone except the buyers, sellers, landlords or tenants you ask us to put you in touch with.

We keep enquiries for as long as we are helping you and for up to two years afterwards, then delete them. You may ask to see, correct or delete your data at any time by writing to %[2]s.`,
			agency, email)},
	}
}

// enquiries returns 4 to 6 messages, about half of them about a visible
// property and the rest general questions.
func enquiries(r *rand.Rand, ps []plannedProperty, cs []city) []plannedEnquiry {
	var visible []int
	for i, p := range ps {
		if p.in.Visible {
			visible = append(visible, i)
		}
	}
	n := between(r, 4, 6)
	out := make([]plannedEnquiry, 0, n)
	who := r.Perm(len(people))
	for i := range n {
		p := people[who[i%len(who)]]
		e := plannedEnquiry{e: content.Enquiry{Name: p.name, Email: p.email, Phone: p.phone}, property: -1}
		if i%2 == 0 && len(visible) > 0 {
			e.property = visible[r.IntN(len(visible))]
			e.e.Body = aboutProperty(r, ps[e.property].in)
		} else {
			e.e.Body = general(r, pick(r, cs).name)
		}
		out = append(out, e)
	}
	return out
}

func aboutProperty(r *rand.Rand, in content.PropertyInput) string {
	kind := strings.ToLower(in.PropertyType)
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("Hello, I am interested in \"%s\" (ref. %s). Is it still available? I could come for a viewing any weekday after 5 pm.", in.Title, in.Reference)
	case 1:
		return fmt.Sprintf("Could you tell me more about the %s in %s, reference %s? In particular, what are the monthly community fees, and when was it last renovated?", kind, in.City, in.Reference)
	case 2:
		if in.ForRent {
			return fmt.Sprintf("We would like to rent the %s in %s (%s) from next month. Is a two-year contract possible, and are pets allowed? We have a small, very quiet dog.", kind, in.City, in.Reference)
		}
		return fmt.Sprintf("Is the price of the %s in %s (%s) negotiable? We are cash buyers and could move quickly.", kind, in.City, in.Reference)
	default:
		return fmt.Sprintf("Hi, we saw %s online and love it. Would Saturday morning work for a viewing? We are a family of four relocating this summer.", in.Reference)
	}
}

func general(r *rand.Rand, cityName string) string {
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("We are relocating to %s in the spring and are looking for a 3-bedroom house to rent, ideally with a garden and close to an international school. Our budget is up to €2,500 a month. Can you help?", cityName)
	case 1:
		return fmt.Sprintf("I am thinking of selling my apartment in %s and would like a valuation. When could someone come round to see it?", cityName)
	case 2:
		return fmt.Sprintf("Do you manage holiday lets? I own a small villa near %s and am looking for an agency to look after it.", cityName)
	default:
		return fmt.Sprintf("Hello, could you let me know when new 2-bedroom apartments for sale in %s under €350,000 come on the market? Thank you!", cityName)
	}
}
