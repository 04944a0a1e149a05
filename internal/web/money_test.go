package web

import (
	"testing"

	"github.com/propertywebbuilder/pwb/internal/content"
)

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cents    *int64
		currency string
		want     string
	}{
		{nil, "EUR", "Price on application"},
		{cents(0), "EUR", "€0"},
		{cents(95_000), "EUR", "€950"},
		{cents(125_000_000), "EUR", "€1,250,000"},
		{cents(125_000_050), "EUR", "€1,250,000.50"},
		{cents(125_005), "eur", "€1,250.05"},
		{cents(99), "GBP", "£0.99"},
		{cents(100_000_000_00), "USD", "$100,000,000"},
		{cents(98_000), "CHF", "CHF 980"},
		{cents(1_234_567_89), "JPY", "JPY 1,234,567.89"},
		{cents(450_000_00), "", "450,000"},
		{cents(-1_500_00), "EUR", "-€1,500"},
		{cents(-1_500_00), "SEK", "SEK -1,500"},
	} {
		if got := formatMoney(tc.cents, tc.currency); got != tc.want {
			t.Errorf("formatMoney(%v, %q) = %q, want %q", maybeCents(tc.cents), tc.currency, got, tc.want)
		}
	}
}

func maybeCents(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestCardFacts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    content.Property
		want string
	}{
		{content.Property{City: "Lisbon", Bedrooms: 2, Bathrooms: 1, PropertyType: "Apartment"}, "Lisbon · 2 bed · 1 bath · Apartment"},
		{content.Property{City: "Porto", Bedrooms: 0, Bathrooms: 1, PropertyType: "Loft"}, "Porto · Studio · 1 bath · Loft"},
		{content.Property{City: "Porto", Bedrooms: 0, Bathrooms: 1, PropertyType: "studio"}, "Porto · Studio · 1 bath"},
		{content.Property{Bedrooms: 1, PropertyType: "Studio"}, "1 bed · Studio"},
		{content.Property{Bedrooms: 5, Bathrooms: 3}, "5 bed · 3 bath"},
	} {
		if got := cardFacts(tc.p); got != tc.want {
			t.Errorf("cardFacts(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
