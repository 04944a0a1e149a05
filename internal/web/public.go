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
	"github.com/propertywebbuilder/pwb/internal/tenant"
	"github.com/propertywebbuilder/pwb/internal/throttle"
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
	return s.renderPublic(w, r, http.StatusOK, "public/home", view{Data: d})
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
		return s.renderPublic(w, r, http.StatusOK, "public/search", view{Title: title, Data: d})
	}
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
	Enquiry  content.Enquiry
}

func (s *Server) property(w http.ResponseWriter, r *http.Request) error {
	p, err := content.GetVisibleProperty(r.Context(), siteFrom(r.Context()).Scope, r.PathValue("slug"))
	if err != nil {
		return err
	}
	v := view{Title: p.Title, Data: propertyData{Property: p}}
	if r.URL.Query().Get("sent") == "1" {
		v.Flash = "Thank you. Your enquiry has been sent to the agent."
	}
	return s.renderPublic(w, r, http.StatusOK, "public/property", v)
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
		view{Title: title, Data: photoPageData{Property: p, Photo: p.Photos[n-1], N: n}})
}

func (s *Server) propertyEnquiry(w http.ResponseWriter, r *http.Request) error {
	sc := siteFrom(r.Context()).Scope
	p, err := content.GetVisibleProperty(r.Context(), sc, r.PathValue("slug"))
	if err != nil {
		return err
	}
	e, err := readEnquiry(w, r)
	if err != nil {
		return err
	}
	e.PropertyID = &p.ID
	again := func(status int, msg string, fields fieldErr) error {
		return s.renderPublic(w, r, status, "public/property", view{
			Title: p.Title, Data: propertyData{Property: p, Enquiry: e}, Error: msg, Fields: fields})
	}
	if sent, err := s.sendEnquiry(w, r, e, again); !sent || err != nil {
		return err
	}
	http.Redirect(w, r, "/properties/"+url.PathEscape(p.Slug)+"?sent=1#enquiry", http.StatusSeeOther)
	return nil
}

func readEnquiry(w http.ResponseWriter, r *http.Request) (content.Enquiry, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPublicForm)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return content.Enquiry{}, err
		}
		return content.Enquiry{}, errorPage(http.StatusBadRequest, "Bad request", "The form could not be read. Nothing was sent.")
	}
	return content.Enquiry{
		Name: r.PostForm.Get("name"), Email: r.PostForm.Get("email"),
		Phone: r.PostForm.Get("phone"), Body: r.PostForm.Get("message"),
	}, nil
}

// sendEnquiry checks e, counts it against the client's enquiries to this
// website, and saves it. When the form has a mistake or the limit is
// reached, it is not saved: sendEnquiry draws the form again with what the
// visitor typed (through again) and reports sent false.
func (s *Server) sendEnquiry(w http.ResponseWriter, r *http.Request, e content.Enquiry,
	again func(status int, msg string, fields fieldErr) error) (sent bool, err error) {
	st := siteFrom(r.Context())
	const correct = "Your message was not sent. Please correct the form."
	// Checked before it is counted: a form with a mistake costs nothing.
	if err := e.Validate(); err != nil {
		return false, again(http.StatusUnprocessableEntity, correct, invalidFields(err))
	}
	key := throttle.Key{Kind: throttle.Enquiry, WebsiteID: st.Website.ID, Subject: throttle.AddressSubject(requestFrom(r.Context()).Client)}
	d, err := throttle.Take(r.Context(), s.accounts, throttle.Counted{Key: key, Rule: s.enquiries})
	if err != nil {
		return false, err
	}
	if !d.Allowed {
		wait := waitText(setRetryAfter(w, d.RetryAfter))
		return false, again(http.StatusTooManyRequests,
			"You have sent several messages in a short time, so this one has not been sent yet. "+
				"Your text is kept below: please send it again in "+wait+", or contact the agency by phone or email.", nil)
	}
	if err := s.tenantWrite(r, func(sc tenant.Scope) error {
		_, err := content.SubmitEnquiry(r.Context(), sc, e)
		return err
	}); err != nil {
		if fields := invalidFields(err); fields != nil {
			return false, again(http.StatusUnprocessableEntity, correct, fields)
		}
		return false, err
	}
	return true, nil
}

func (s *Server) contact(w http.ResponseWriter, r *http.Request) error {
	v := view{Title: "Contact us", Data: content.Enquiry{}}
	if r.URL.Query().Get("sent") == "1" {
		v.Flash = "Thank you. Your message has been sent."
	}
	return s.renderPublic(w, r, http.StatusOK, "public/contact", v)
}

func (s *Server) contactSubmit(w http.ResponseWriter, r *http.Request) error {
	e, err := readEnquiry(w, r)
	if err != nil {
		return err
	}
	again := func(status int, msg string, fields fieldErr) error {
		return s.renderPublic(w, r, status, "public/contact", view{Title: "Contact us", Data: e, Error: msg, Fields: fields})
	}
	if sent, err := s.sendEnquiry(w, r, e, again); !sent || err != nil {
		return err
	}
	http.Redirect(w, r, "/contact?sent=1", http.StatusSeeOther)
	return nil
}

func (s *Server) cmsPage(w http.ResponseWriter, r *http.Request) error {
	p, err := content.GetVisiblePage(r.Context(), siteFrom(r.Context()).Scope, r.PathValue("slug"))
	if err != nil {
		return err
	}
	return s.renderPublic(w, r, http.StatusOK, "public/page", view{Title: p.Title, Data: p})
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
