package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseTimeSpan parses an IIS timeSpan attribute such as requestTimeout:
// "hh:mm:ss", "hh:mm", "d.hh:mm:ss" or "d.hh:mm", with an optional fraction
// of up to 7 digits on the seconds ("00:00:01.5"). Hours are not limited to
// 23 unless days are given ("360:00:00" is valid). Minutes and seconds must
// be 0–59: "00:60:00" is an error, as IIS's schema validation makes it.
// Signs and spaces are not accepted.
func ParseTimeSpan(s string) (time.Duration, error) {
	d, err := parseTimeSpan(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a timeSpan [d.]hh:mm[:ss]: %w", s, err)
	}
	return d, nil
}

func parseTimeSpan(s string) (time.Duration, error) {
	var days int64
	hms := s
	if dot := strings.IndexByte(s, '.'); dot >= 0 && dot < strings.IndexByte(s, ':') {
		n, err := digits(s[:dot], 8)
		if err != nil {
			return 0, errors.New("days are not a whole number")
		}
		days, hms = n, s[dot+1:]
	}
	parts := strings.Split(hms, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, errors.New("want two or three fields separated by ':'")
	}
	h, err := digits(parts[0], 8)
	if err != nil {
		return 0, errors.New("hours are not a whole number")
	}
	if s != hms && h > 23 {
		return 0, errors.New("hours must be 0–23 when days are given")
	}
	m, err := digits(parts[1], 2)
	if err != nil {
		return 0, errors.New("minutes are not a whole number")
	}
	if m > 59 {
		return 0, errors.New("minutes must be 0–59")
	}
	var sec, frac int64
	if len(parts) == 3 {
		whole, f, hasFrac := strings.Cut(parts[2], ".")
		if sec, err = digits(whole, 2); err != nil {
			return 0, errors.New("seconds are not a whole number")
		}
		if sec > 59 {
			return 0, errors.New("seconds must be 0–59")
		}
		if hasFrac {
			n, err := digits(f, 7)
			if err != nil {
				return 0, errors.New("fraction of a second is not 1–7 digits")
			}
			frac = n * int64(math.Pow10(9-len(f)))
		}
	}
	total := ((days*24+h)*60+m)*60 + sec
	return time.Duration(total)*time.Second + time.Duration(frac), nil
}

// digits parses 1 to maxLen ASCII digits.
func digits(s string, maxLen int) (int64, error) {
	if s == "" || len(s) > maxLen || strings.Trim(s, "0123456789") != "" {
		return 0, errors.New("not digits")
	}
	return strconv.ParseInt(s, 10, 64)
}

// ParseDuration parses a Gatehouse duration handlerSetting: an IIS timeSpan
// ("00:00:30"), a Go duration ("30s", "1m30s") or whole seconds ("30").
// Negative durations are errors.
func ParseDuration(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	switch {
	case strings.Contains(s, ":"):
		return ParseTimeSpan(s)
	case s != "" && strings.Trim(s, "0123456789") == "":
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil || n > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("%q is too large", s)
		}
		d = time.Duration(n) * time.Second
	default:
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (hh:mm:ss, 30s or whole seconds)", s)
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// ParseSize parses a byte count: whole bytes ("1048576") or a whole number
// with a 1024-based suffix, in any case: B, K/KB/KiB, M/MB/MiB, G/GB/GiB
// ("10MB" is 10485760).
func ParseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "BbIiKkMmGg")
	unit := strings.ToUpper(s[len(num):])
	var mult int64
	switch unit {
	case "", "B":
		mult = 1
	case "K", "KB", "KIB":
		mult = 1 << 10
	case "M", "MB", "MIB":
		mult = 1 << 20
	case "G", "GB", "GIB":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("%q has an unknown unit (use B, KB, MB or GB)", s)
	}
	n, err := digits(num, 18)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number of bytes, KB, MB or GB", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}
