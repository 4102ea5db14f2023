"""The `meta` category of the differential test: memcached 1.6.18's meta commands
(mg ms md ma mn me), every flag, their errors, and how they mix with the text commands.

Imported by differential_cases.py, which calls add(case, Fn, Later, NOCAS).
Every reply is compared byte for byte after differential_test.normalise(), which renames CAS
values (c<N>, cas=<N>) like the uniques of VALUE lines and hides the numbers that depend on the
one-second clock (t<N> for N >= 0, l<N>, and me's exp= and la=).
"""

K250 = b"k" * 250
K251 = b"k" * 251


def add(case, Fn, Later, NOCAS):
    C = "meta"

    # -- mn, and how meta replies interleave with the text protocol --------------------------
    case(C, "meta_mn", b"mn\r\n")
    case(C, "meta_mn_extra_tokens", b"mn foo bar\r\n")
    case(C, "meta_unknown_two_letter", b"mx foo\r\nmz\r\nm\r\n")
    case(C, "meta_mixed_with_text", b"set a 3 0 1\r\nx\r\nmg a v f\r\nms b 1 F4\r\ny\r\n"
         b"gets b\r\nmd a\r\nget a\r\nmn\r\n")

    # -- mg: flags -------------------------------------------------------------------------
    case(C, "mg_miss", b"mg foo v\r\n")
    case(C, "mg_miss_no_flags", b"mg foo\r\n")
    case(C, "mg_miss_echoes_opaque_and_key", b"mg foo O123 k v t\r\n")
    case(C, "mg_miss_quiet", b"mg foo v q O1\r\nmg bar q k\r\nmn\r\n")
    case(C, "mg_hit_no_flags", b"set foo 0 0 3\r\nbar\r\nmg foo\r\n")
    case(C, "mg_hit_value", b"set foo 0 0 3\r\nbar\r\nmg foo v\r\n")
    case(C, "mg_hit_all_read_flags",
         b"set foo 5 0 3\r\nbar\r\nmg foo s v t f c k O9 h l\r\n")
    case(C, "mg_flag_order_is_kept",
         b"set foo 5 0 3\r\nbar\r\nmg foo O1 k f s v\r\nmg foo v s f k O1\r\n")
    case(C, "mg_quiet_hit_still_answers", b"set foo 0 0 1\r\nx\r\nmg foo v q O7\r\nmn\r\n")
    case(C, "mg_hit_flags_zero", b"set foo 0 0 1\r\nx\r\nmg foo f v\r\n")
    case(C, "mg_empty_value", b"set e 0 0 0\r\n\r\nmg e v s\r\n")
    case(C, "mg_binary_value", b"set b 0 0 4\r\n\x00\r\n\xff\r\nmg b v\r\n")
    case(C, "mg_ttl_none_and_set", b"set a 0 0 1\r\nx\r\nset b 0 100 1\r\ny\r\nmg a t\r\nmg b t\r\n")
    case(C, "mg_hit_before", b"set a 0 0 1\r\nx\r\nmg a h\r\nmg a h\r\nmg a h v\r\n")
    case(C, "mg_no_update_keeps_unfetched",
         b"set a 0 0 1\r\nx\r\nmg a u h\r\nmg a u h\r\nmg a h\r\nmg a h\r\n")
    case(C, "mg_touch", b"set a 0 0 1\r\nx\r\nmg a T100 t\r\nmg a t\r\n")
    case(C, "mg_t_before_T_shows_old_ttl", b"ms a 1 T100\r\nx\r\nmg a t T5 v\r\nmg a T7 t\r\n")
    case(C, "mg_touch_negative_expires", b"set a 0 0 1\r\nx\r\nmg a T-1\r\nmg a v\r\n")
    case(C, "mg_touch_then_get", b"set a 0 0 1\r\nx\r\nmg a T0 v\r\nmg a t v\r\n")
    case(C, "mg_plain_get_after_mg", b"set a 7 0 2\r\nxy\r\nmg a\r\nget a\r\ngets a\r\n")
    case(C, "mg_proxy_hints_ignored", b"set a 0 0 1\r\nx\r\nmg a v P/path Lroute\r\n")
    case(C, "mg_key_250", b"set " + K250 + b" 0 0 1\r\nx\r\nmg " + K250 + b" v k\r\n")
    case(C, "mg_large_value", b"set big 0 0 100000\r\n" + b"z" * 100000 + b"\r\nmg big s v\r\n")

    # -- mg: errors ---------------------------------------------------------------------------
    case(C, "mg_no_key", b"mg\r\n")
    case(C, "mg_key_251", b"mg " + K251 + b" v\r\n")
    case(C, "mg_duplicate_flag", b"mg foo v v\r\n")
    case(C, "mg_invalid_flag", b"mg foo x\r\nmg foo S5\r\n")
    case(C, "mg_high_byte_flag", b"mg foo \xc3\xa9\r\n")
    case(C, "mg_bad_T_token", b"mg foo Tabc\r\nmg foo T\r\n")
    case(C, "mg_bad_N_and_R_tokens", b"mg a N\r\nmg b Rxyz\r\n")
    case(C, "mg_too_many_flags", b"mg a 1 2 3 4 5 6 7 8 9 a b c d e f g h i j k l\r\n")
    case(C, "mg_nineteen_tokens_ok", b"set a 0 0 1\r\nx\r\nmg a s v t f c k h l O1 P2 L3 u\r\n")
    case(C, "mg_opaque_32_ok", b"mg foo O" + b"1" * 31 + b"\r\n")
    case(C, "mg_opaque_too_long", b"mg foo O" + b"1" * 32 + b"\r\n")
    case(C, "mg_error_not_quiet", b"mg foo q v v\r\nmg foo q x\r\nmn\r\n")

    # -- base64 keys -----------------------------------------------------------------------------
    case(C, "b64_set_get", b"ms Zm9v 3 b k\r\nabc\r\nmg Zm9v b k v\r\nget foo\r\n")
    case(C, "b64_binary_key_bytes", b"ms AAEC/w== 1 b\r\nx\r\nmg AAEC/w== b v k\r\nmd AAEC/w== b k\r\n")
    case(C, "b64_miss_echo", b"mg Zm9v b k O5\r\n")
    case(C, "b64_decode_error", b"mg @@@ b\r\nmg Zm9 b\r\nmg Zm9v==== b\r\n")
    case(C, "b64_ignores_stray_chars", b"set foo 0 0 1\r\nx\r\nmg Zm9v@ b v\r\n")
    case(C, "b64_text_key_returned_plain", b"set foo 0 0 1\r\nx\r\nmg Zm9v b k v\r\n")
    case(C, "b64_md_ma", b"ms Y250 1 b\r\n5\r\nma Y250 b v k\r\nmd Y250 b q\r\nmg Y250 b v\r\n")

    # -- ms ---------------------------------------------------------------------------------------
    case(C, "ms_basic", b"ms foo 3\r\nabc\r\nget foo\r\n")
    case(C, "ms_flags_ttl_echo", b"ms foo 3 T0 F7 c k O5\r\nxyz\r\nmg foo f v\r\n")
    case(C, "ms_quiet", b"ms foo 3 q\r\nxyz\r\nmn\r\nget foo\r\n")
    case(C, "ms_quiet_failure_still_answers", b"ms f 1 q O1 k\r\nx\r\nms f 1 ME q O2 k\r\nx\r\n")
    case(C, "ms_zero_length", b"ms foo 0\r\n\r\nmg foo v s\r\n")
    case(C, "ms_mode_add", b"ms foo 3 ME\r\nxyz\r\nms foo 3 ME\r\nabc\r\nget foo\r\n")
    case(C, "ms_mode_replace", b"ms nf 1 MR\r\nx\r\nms nf 1\r\ny\r\nms nf 1 MR\r\nz\r\nget nf\r\n")
    case(C, "ms_mode_append_prepend",
         b"ms ap 1 MA\r\nw\r\nms ap 1\r\nx\r\nms ap 1 MA\r\ny\r\nms ap 1 MP\r\nz\r\nmg ap v\r\n")
    case(C, "ms_mode_set_explicit", b"ms s 1 MS\r\nx\r\nmg s v\r\n")
    case(C, "ms_append_keeps_flags_ttl",
         b"ms ap 1 F9 T100\r\nx\r\nms ap 1 MA F1\r\ny\r\nmg ap v f t\r\n")
    case(C, "ms_invalid_mode_swallows", b"ms foo 3 MX\r\nxyz\r\nmn\r\n")
    case(C, "ms_M_token_length", b"ms foo 3 MEE\r\nxyz\r\nms foo 3 M\r\nxyz\r\nmn\r\n")
    case(C, "ms_no_length", b"ms foo\r\n")
    case(C, "ms_bad_length_no_swallow", b"ms foo abc\r\nxyz\r\n")
    case(C, "ms_negative_length", b"ms big -1\r\nmn\r\n")
    case(C, "ms_bad_data_chunk", b"ms foo 3\r\nxyzz\r\nmg foo v\r\n")
    case(C, "ms_bad_data_chunk_quiet", b"ms foo 3 q\r\nxyzz\r\nmn\r\n")
    case(C, "ms_bad_flag_token", b"ms f 1 Fabc\r\nx\r\nms f 1 Tabc\r\nx\r\nms f 1 C12x\r\nx\r\nmn\r\n")
    case(C, "ms_invalid_flag_swallows", b"ms x 1 S5\r\nx\r\nms x 1 v\r\nx\r\nmn\r\n")
    case(C, "ms_duplicate_flag", b"ms x 1 T1 T2\r\nx\r\nmn\r\n")
    case(C, "ms_key_251", b"ms " + K251 + b" 1\r\nx\r\n")
    case(C, "ms_too_many_flags", b"ms a 1 1 2 3 4 5 6 7 8 9 a b c d e f g h i\r\nx\r\n")
    case(C, "ms_opaque_too_long", b"ms a 1 O" + b"9" * 40 + b"\r\nx\r\nmn\r\n")
    case(C, "ms_ttl_negative", b"ms c3 2 T-1\r\n10\r\nmg c3 v\r\n")
    case(C, "ms_too_large", b"ms big 2000000\r\n" + b"a" * 2000000 + b"\r\nmg big s\r\n")
    case(C, "ms_too_large_drops_old", b"set big 0 0 1\r\nx\r\nms big 2000000 MA\r\n" +
         b"a" * 2000000 + b"\r\nmg big v\r\n")
    case(C, "ms_value_with_crlf_inside", b"ms v 6\r\na\r\nb\r\n\r\nmg v v\r\n")

    # -- ms with CAS ----------------------------------------------------------------------------
    case(C, "ms_cas_return", b"ms a 1 c\r\nx\r\nms a 1 c\r\ny\r\nmg a c v\r\n")
    case(C, "ms_compare_cas", b"ms a 1 c\r\nx\r\n",
         Fn(lambda r: b"ms a 1 C" + r.split(b" c")[1].split(b"\r\n")[0] + b" c\r\ny\r\nmg a v\r\n",
            until=b"\r\n", label="ms a 1 C<cas> c"))
    case(C, "ms_compare_cas_mismatch", b"ms a 1\r\nx\r\nms a 1 C999 c\r\ny\r\nmg a v\r\n")
    case(C, "ms_compare_cas_missing", b"ms nf 1 C5\r\nx\r\nms nf 1 C5 q\r\nx\r\nmn\r\n")
    case(C, "ms_replace_with_cas", b"ms r 1\r\nx\r\nms r 1 MR C1\r\ny\r\nms r 1 MR C999\r\nz\r\nmg r v\r\n")
    case(C, "ms_append_with_cas", b"ms ap 1\r\nx\r\nms ap 1 MA C999\r\ny\r\nms ap 1 MA C1\r\nz\r\nmg ap v\r\n")
    case(C, "ms_add_with_cas_ignored", b"ms ad 1 ME C999\r\nx\r\nmg ad v\r\n")
    case(C, "ms_invalidate_older_cas_is_stale",
         b"ms a 1 c\r\nx\r\nms a 1 C1 I c\r\ny\r\nmg a v c\r\nms a 1 C1 I\r\nz\r\n"
         b"mg a v c t\r\nmg a v\r\nms a 1 C3\r\nn\r\nmg a v c\r\n")
    case(C, "ms_invalidate_newer_cas_refused",
         b"ms b 1 T100\r\nx\r\nmg b R200 c\r\nms b 1 C100 I c\r\nw\r\nmg b v c\r\n")
    case(C, "ms_cas_C_off", b"ms a 1 c\r\nx\r\nmg a c v\r\nms a 1 C0\r\ny\r\nms a 1 C0 I\r\nz\r\n"
         b"mg a v\r\nmd a C0\r\nmg a v\r\n", args=NOCAS)

    # -- md ---------------------------------------------------------------------------------------
    case(C, "md_hit_miss", b"set a 0 0 1\r\nx\r\nmd a\r\nmd a\r\nget a\r\n")
    case(C, "md_quiet", b"set a 0 0 1\r\nx\r\nmd a q\r\nmd a q\r\nmn\r\n")
    case(C, "md_echo", b"set a 0 0 1\r\nx\r\nmd a k O1\r\nmd a O2 k\r\n")
    case(C, "md_cas", b"set a 0 0 1\r\nx\r\nmd a C999\r\nmd a C1 q\r\nmg a v\r\nmn\r\n")
    case(C, "md_invalidate", b"ms b 1\r\nx\r\nmd b I\r\nmg b c v\r\nmg b v\r\nmg b v c\r\n")
    case(C, "md_invalidate_with_ttl", b"ms foo 3\r\nabc\r\nmd foo I T30\r\nmg foo t v c\r\nmg foo v\r\n")
    case(C, "md_invalidate_quiet_then_set_clears",
         b"ms f 1\r\nx\r\nmd f I q\r\nmg f v\r\nms f 1\r\ny\r\nmg f v\r\nmn\r\n")
    case(C, "md_invalidate_missing", b"md gg I\r\nmd gg I q\r\nmn\r\n")
    case(C, "md_T_without_I_ignored", b"set a 0 0 1\r\nx\r\nmd a T30\r\nmg a v\r\n")
    case(C, "md_bad_flags", b"md a v v\r\nmd a x\r\nmd a Cxyz\r\nmd\r\nmd " + K251 + b"\r\n")
    case(C, "md_opaque_too_long", b"md a O" + b"1" * 33 + b"\r\n")
    case(C, "md_then_text_delete", b"set a 0 0 1\r\nx\r\nmd a I\r\ndelete a\r\nmg a v\r\n")

    # -- stale-while-revalidate: N, R, W, X, Z -------------------------------------------------
    case(C, "mg_vivify", b"mg new N30 t v c s\r\nmg new N30 t v c\r\nms new 2 C1\r\nhi\r\nmg new v\r\n")
    case(C, "mg_vivify_all_flags", b"mg e N0 s v f t h l c\r\nmg e s v f t h l c\r\n")
    case(C, "mg_vivify_then_set_clears_token",
         b"mg n N30 v\r\nms n 2 T60\r\nok\r\nmg n v t\r\nmg n N30 v\r\n")
    case(C, "mg_vivify_quiet", b"mg n N30 q v\r\nmg n N30 q v\r\nmn\r\n")
    case(C, "mg_recache", b"ms k 1 T100\r\nx\r\nmg k R200 v\r\nmg k R200 v\r\nmg k R50 v\r\n")
    case(C, "mg_recache_not_below", b"ms k 1 T100\r\nx\r\nmg k R30 v\r\nmg k R30 v\r\n")
    case(C, "mg_recache_no_ttl", b"set k 0 0 1\r\nx\r\nmg k R30 v\r\n")
    case(C, "mg_recache_after_touch", b"ms k 1 T100\r\nx\r\nmg k T10 R50 v\r\nmg k R50 v\r\n")
    case(C, "mg_stale_win_once", b"set s 0 0 1\r\nx\r\nmd s I\r\nmg s\r\nmg s\r\nmg s v\r\n")
    case(C, "mg_stale_recache_flow",
         b"ms s 1 T60\r\nv\r\nmd s I T30\r\nmg s v c t\r\nmg s v\r\n",
         Fn(lambda r: b"ms s 2 C" + r.split(b" c")[1].split(b" ")[0] + b" T60\r\nv2\r\nmg s v t\r\n",
            until=b"X\r\nv\r\n", label="ms s 2 C<cas> T60"))

    # -- ma ---------------------------------------------------------------------------------------
    case(C, "ma_miss", b"ma cnt\r\nma cnt v\r\nma cnt q\r\nmn\r\n")
    case(C, "ma_basic", b"set n 0 0 1\r\n5\r\nma n\r\nma n v\r\nmg n v\r\n")
    case(C, "ma_vivify", b"ma cnt N0 J5 v\r\nma cnt v\r\nma cnt MD D10 v t c\r\n")
    case(C, "ma_vivify_quiet_answers", b"ma x q\r\nma x q N0\r\nma x q\r\nmn\r\nmg x v\r\n")
    case(C, "ma_modes", b"set n 0 0 2\r\n10\r\nma n MI\r\nma n M+ D5\r\nma n MD D3\r\nma n M- v\r\n"
         b"ma n Mx\r\nmg n v\r\n")
    case(C, "ma_decr_floor_and_pad", b"set n 0 0 3\r\n100\r\nma n MD D99 v\r\nmg n v s\r\n")
    case(C, "ma_incr_wraps", b"ma c2 N0 J18446744073709551615 v\r\nma c2 v\r\nma c2 MD D5 v\r\n")
    case(C, "ma_grows_past_value", b"set n 0 0 1\r\n9\r\nma n v\r\nma n D990 v\r\nmg n v s\r\n")
    case(C, "ma_non_numeric", b"set t 0 0 1\r\nx\r\nma t\r\nma t v q\r\n")
    # memcached looks at the value before the CAS: an empty one is non-numeric, a text one EX.
    case(C, "ma_cas_on_empty_and_text_values",
         b"set e 0 0 0\r\n\r\nma e C999\r\nset 5 0 0 0\r\n\r\nma 5 C999\r\n"
         b"set t 0 0 1\r\nx\r\nma t C999\r\n")
    case(C, "ma_bad_tokens", b"ma x D-1\r\nma x Dabc\r\nma x Jabc N0\r\nma x C\r\nma x v v\r\n")
    case(C, "ma_ttl_flags", b"ma g N0 T0 t\r\nma g t T100 t\r\nmg g t v\r\n")
    case(C, "ma_vivify_ttl", b"ma v N100 t v\r\nma v t v\r\n")
    case(C, "ma_cas", b"ma n N0 c v\r\nma n C999 v\r\nma n C0 v\r\n",
         Fn(lambda r: b"ma n C" + r.split(b" c")[1].split(b"\r\n")[0] + b" c v\r\n",
            until=b"VA 1\r\n1\r\n", label="ma n C<cas> c v"))
    case(C, "ma_echo_on_miss_and_hit", b"ma a O1 k\r\nma a N0 O2 k v\r\n")
    case(C, "ma_text_incr_mix", b"ma n N0 J7\r\nincr n 3\r\nma n v\r\ndecr n 100\r\nma n v\r\n")
    case(C, "ma_opaque_too_long", b"ma a O" + b"2" * 33 + b"\r\n")
    case(C, "ma_no_key", b"ma\r\nma " + K251 + b"\r\n")

    # -- me ---------------------------------------------------------------------------------------
    case(C, "me_hit_miss", b"set a 0 0 1\r\nx\r\nme a\r\nme zz\r\n")
    case(C, "me_after_fetch_and_ttl", b"set a 0 100 1\r\nx\r\nget a\r\nme a\r\n")
    case(C, "me_does_not_fetch", b"set a 0 0 1\r\nx\r\nme a\r\nmg a h\r\n")
    case(C, "me_errors", b"me\r\nme a b\r\nme " + K251 + b"\r\n")
    case(C, "me_base64", b"ms Zm9v 1 b\r\nx\r\nme Zm9v b\r\nset bar 0 0 1\r\ny\r\nme YmFy b\r\n")

    # -- pipelines ---------------------------------------------------------------------------------
    case(C, "pipeline_quiet_gets_with_opaque",
         b"ms a 1 q\r\n1\r\nms b 1 q\r\n2\r\nmg a v q O1\r\nmg x v q O2\r\nmg b v q O3 k\r\nmn\r\n")
    case(C, "pipeline_split_mid_flags", b"ms a 1 T", b"100 F3\r\n", b"x\r\nmg a v", b" f t\r\n")
    case(C, "pipeline_data_split", b"ms a 5\r\nab", b"cde\r\nmg a v\r\n")
