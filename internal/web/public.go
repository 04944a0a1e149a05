package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/propertywebbuilder/pwb/internal/content"
)

// maxPublicForm bounds an enquiry or contact form: a message is at most a few
// kilobytes, so anything far larger is refused before it is read.
const maxPublicForm = 64 << 10

func (s *Server) publicRoutes(mux *http.ServeMux) {
	mux.Handle("GET /{$}", s.handle(s.home))
	mux.Handle("GET /buy", s.handle(s.search("sale")))
	mux.Handle("GET /rent", s.handle(s.search("rent")))
	mux.Handle("GET /properties/{slug}", s.handle(s.property))
	mux.Handle("GET /properties/{slug}/photos/{n}", s.handle(s.propertyPhoto))
	mux.Handle("POST /properties/{slug}/enquiry", s.handle(s.propertyEnquiry))
	mux.Handle("GET /contact", s.handle(s.contact))
	mux.Handle("POST /contact", s.handle(s.contactSubmit))
	mux.Handle("GET /p/{slug}", s.handle(s.cmsPage))
	mux.Handle("GET /photos/{id}", s.handle(s.photo(true)))
	s.seoRoutes(mux)
}

// chrome is what every public page shows around its content: the site's
// name, its menu of CMS pages and the agency details in the footer.
type chrome struct {
	Name     string
	Agency   content.Agency
	Menu     []content.Page
	ReadOnly bool // changes are paused (the site admin says so)
}

func loadChrome(ctx context.Context, st *site) (*chrome, error) {
	ag, menu, err := content.GetFrame(ctx, st.Scope)
	if err != nil {
		return nil, err
	}
	return &chrome{Name: st.Website.Name, Agency: ag, Menu: menu}, nil
}

// renderPublic draws a public page with the site's chrome around it.
func (s *Server) renderPublic(w http.ResponseWriter, r *http.Request, status int, name string, v view) error {
	st := siteFrom(r.Context())
	c, err := loadChrome(r.Context(), st)
	if err != nil {
		return err
	}
	v.Site, v.Path, v.RequestID = c, r.URL.Path, requestFrom(r.Context()).ID
	v.Meta = publicMeta(r, c, v.Title, v.Meta)
	return s.pages.render(w, status, name, v)
}

// homeCards is how many cards each list of the home page shows: two rows
// of a card grid, which has one, two or three columns.
const homeCards = 6

type homeData struct {
	Form                          searchForm
	Highlighted, ForSale, ForRent []content.Property
}

// home runs three statements on the tenant's shard: its lists in one, the
// search form's choices, and the page's frame.
func (s *Server) home(w http.ResponseWriter, r *http.Request) error {
	sc := siteFrom(r.Context()).Scope
	lists, err := content.SearchMany(r.Context(), sc,
		content.Filter{HighlightedOnly: true, PerPage: homeCards},
		content.Filter{Listing: content.ListingSale, PerPage: homeCards},
		content.Filter{Listing: content.ListingRent, PerPage: homeCards})
	if err != nil {
		return err
	}
	d := homeData{Highlighted: lists[0].Properties, ForSale: lists[1].Properties, ForRent: lists[2].Properties}
	if d.Form.Choices, err = content.SearchChoices(r.Context(), sc); err != nil {
		return err
	}
	return s.renderPublic(w, r, http.StatusOK, "public/home", view{Data: d, Meta: &pageMeta{Image: firstCover(d.Highlighted)}})
}

type searchData struct {
	Form    searchForm
	Results content.Results
	URL     *url.URL
}

// searchForm is the one search form of the home page, /buy and /rent.
type searchForm struct {
	Listing string // the page's listing, "sale" or "rent"; "" on the home page
	Query   searchQuery
	content.Choices
	Fields fieldErr
}

// searchQuery is the search form as typed, shown back to the visitor.
type searchQuery struct {
	MinPrice, MaxPrice, Bedrooms, Type, City string
}

// search runs three statements on the tenant's shard: the page of results
// with their count, the form's choices, and the page's frame.
func (s *Server) search(listing string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sc := siteFrom(r.Context()).Scope
		q := r.URL.Query()
		d := searchData{URL: r.URL, Form: searchForm{Listing: listing, Query: searchQuery{
			MinPrice: q.Get("min_price"), MaxPrice: q.Get("max_price"), Bedrooms: q.Get("bedrooms"),
			Type: q.Get("type"), City: q.Get("city"),
		}}}
		f, fields := parseFilter(listing, q)
		var err error
		if d.Form.Choices, err = content.SearchChoices(r.Context(), sc); err != nil {
			return err
		}
		if len(fields) == 0 {
			d.Results, err = content.Search(r.Context(), sc, f)
			var invalid *content.InvalidError
			if errors.As(err, &invalid) {
				fields = searchFields(invalid.Fields)
			} else if err != nil {
				return err
			}
		}
		title := "Homes for sale"
		if listing == "rent" {
			title = "Homes to rent"
		}
		if len(fields) > 0 {
			d.Form.Fields = fields
			return s.renderPublic(w, r, http.StatusBadRequest, "public/search",
				view{Title: title, Data: d, Fields: fields, Error: "Please correct the search."})
		}
		if d.Results.Page > d.Results.Pages() {
			return pastLastPage(r.URL, d.Results)
		}
		return s.renderPublic(w, r, http.StatusOK, "public/search", view{Title: title, Data: d, Meta: searchMeta(r, title, d.Results)})
	}
}

// pastLastPage answers a page of results past the last one: a 404 that
// links to the first page of the same search.
func pastLastPage(u *url.URL, res content.Results) error {
	q := u.Query()
	q.Del("page")
	first := u.Path
	if len(q) > 0 {
		first += "?" + q.Encode()
	}
	fill := "one page"
	if n := res.Pages(); n > 1 {
		fill = strconv.Itoa(n) + " pages"
	}
	return errorPageLinking(http.StatusNotFound, "No such page",
		fmt.Sprintf("There is no page %d of these results: they fit on %s.", res.Page, fill),
		pageLink{Href: first, Text: "Go to the first page"})
}

// searchFields names content's filter problems after the form's inputs.
func searchFields(f map[string]string) fieldErr {
	out := fieldErr{}
	for k, v := range f {
		switch k {
		case "min_bedrooms":
			k = "bedrooms"
		case "property_type":
			k = "type"
		}
		out[k] = v
	}
	return out
}

// parseFilter reads the search form. Prices are typed in whole currency units.
func parseFilter(listing string, q url.Values) (content.Filter, fieldErr) {
	f := content.Filter{Listing: listing, PropertyType: q.Get("type"), City: q.Get("city")}
	fields := fieldErr{}
	var problem string
	if f.MinPriceCents, problem = parseMoney(q.Get("min_price")); problem != "" {
		fields["min_price"] = "Minimum price " + problem
	}
	if f.MaxPriceCents, problem = parseMoney(q.Get("max_price")); problem != "" {
		fields["max_price"] = "Maximum price " + problem
	}
	if b := strings.TrimSpace(q.Get("bedrooms")); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n < 0 || n > 1000 {
			fields["bedrooms"] = "Bedrooms must be a whole number from 0 to 1000."
		}
		f.MinBedrooms = n
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100000 {
			fields["page"] = "Page must be a positive whole number."
		}
		f.Page = n
	}
	return f, fields
}

// parseMoney reads an amount in whole units ("250000", "250,000", "1250.50")
// and returns cents, or what is wrong with it. Empty is nil.
func parseMoney(s string) (*int64, string) {
	const malformed = "must be an amount like 250000 or 1250.50."
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if s == "" {
		return nil, ""
	}
	if strings.HasPrefix(s, "-") {
		return nil, "cannot be negative."
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(whole) > 13 || hasFrac && (len(frac) == 0 || len(frac) > 2) {
		return nil, malformed
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return nil, malformed
		}
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	cents := w * 100
	if hasFrac {
		if len(frac) == 1 {
			frac += "0"
		}
		f, _ := strconv.ParseInt(frac, 10, 64)
		cents += f
	}
	return &cents, ""
}

type propertyData struct {
	Property content.Property
	Form     enquiryForm
}

func (s *Server) property(w http.ResponseWriter, r *http.Request) error {
	p, err := content.GetVisibleProperty(r.Context(), siteFrom(r.Context()).Scope, r.PathValue("slug"))
	if err != nil {
		return err
	}
	return s.renderPublic(w, r, http.StatusOK, "public/property", propertyView(p, propertyEnquiryForm(r, p)))
}

// propertyView is a property's page with its enquiry form as f draws it.
func propertyView(p content.Property, f enquiryForm) view {
	return view{Title: p.Title, Data: propertyData{Property: p, Form: f}, Meta: propertyMeta(p)}
}

type photoPageData struct {
	Property content.Property
	Photo    content.PhotoInfo
	N        int // the photo's place, from 1 to len(Property.Photos)
}

// propertyPhoto shows the nth photo of a visible property large, with links
// to the photos before and after it and back to the property: a page, so it
// works without JavaScript. A photo past the last, or of a property the
// site does not show, is not found.
func (s *Server) propertyPhoto(w http.ResponseWriter, r *http.Request) error {
	p, err := content.GetVisibleProperty(r.Context(), siteFrom(r.Context()).Scope, r.PathValue("slug"))
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 || n > len(p.Photos) {
		return fmt.Errorf("photo %q of property %q: %w", r.PathValue("n"), p.Slug, content.ErrNotFound)
	}
	title := fmt.Sprintf("Photo %d of %d · %s", n, len(p.Photos), p.Title)
	return s.renderPublic(w, r, http.StatusOK, "public/photo",
		view{Title: title, Data: photoPageData{Property: p, Photo: p.Photos[n-1], N: n}, Meta: propertyMeta(p)})
}

func (s *Server) cmsPage(w http.ResponseWriter, r *http.Request) error {
	p, err := content.GetVisiblePage(r.Context(), siteFrom(r.Context()).Scope, r.PathValue("slug"))
	if err != nil {
		return err
	}
	return s.renderPublic(w, r, http.StatusOK, "public/page", view{Title: p.Title, Data: p, Meta: pageMetaOf(p)})
}

// photo serves a photo's bytes from the tenant's shard. Photo ids never change
// content, so browsers may keep them a long time.
func (s *Server) photo(visibleOnly bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		ph, err := content.GetPhoto(r.Context(), siteFrom(r.Context()).Scope, id, visibleOnly)
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", ph.ContentType)
		h.Set("Content-Length", strconv.Itoa(len(ph.Data)))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", `"`+ph.ID.String()+`"`)
		if visibleOnly {
			h.Set("Cache-Control", "public, max-age=86400")
		} else {
			h.Set("Cache-Control", "private, no-store")
		}
		if r.Header.Get("If-None-Match") == `"`+ph.ID.String()+`"` {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		_, _ = w.Write(ph.Data)
		return nil
	}
}
