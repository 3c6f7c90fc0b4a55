;;; e2e.el --- End-to-end driver for Emacs 28 + eglot 1.9 (batch)  -*- lexical-binding: t -*-
;;
;; Run by tests/editors/test_emacs.py:
;;
;;   SWITCHEROO_E2E_SPEC=spec.json emacs --batch -l e2e.el
;;
;; spec.json: {"cmd": [...server command...], "result": PATH, "log": PATH, "timeout_s": N,
;;             "files": [{"path": P, "hovers": [{"line": L, "col": C}, ...],
;;                        "action": {"kind": "quickfix"|"source.fixAll.switcheroo", "line": L, "col": C}?,
;;                        "sweep": ["OPX101", ...]?}]}
;; (lines 1-based, columns 0-based characters).
;;
;; For each file: visit it (python-mode), let eglot connect the way a user's eglot-ensure does
;; (post-command-hook), wait for the diagnostics in flymake, ask for hovers, run
;; `eglot-code-actions' for the kind as the interactive command does — the prompt, if there
;; are several actions, answered with its default (RET: the preferred action) — save, wait for
;; the diagnostics of the saved version. Everything observed goes to spec.result as JSON, the
;; events/stderr buffers and *Messages* to spec.log; a failure writes {"error": ...} and exits 1.

(require 'package)
(package-activate-all)
(require 'eglot)
(require 'flymake)
(require 'json)
(require 'cl-lib)
(require 'subr-x)

(defvar e2e-spec
  (json-parse-string
   (with-temp-buffer
     (insert-file-contents (or (getenv "SWITCHEROO_E2E_SPEC") (error "SWITCHEROO_E2E_SPEC is not set")))
     (buffer-string))
   :object-type 'plist :array-type 'list :null-object nil :false-object nil))
(defvar e2e-timeout (or (plist-get e2e-spec :timeout_s) 20))
(defvar e2e-files nil "One plist per file, in the order they were run.")
(defvar e2e-published nil "(URI . VERSION) of every publishDiagnostics, newest first.")
(defvar e2e-server nil)

(setq eglot-server-programs (list (cons 'python-mode (plist-get e2e-spec :cmd)))
      eglot-confirm-server-initiated-edits nil
      eglot-sync-connect nil
      eglot-autoshutdown nil
      make-backup-files nil
      auto-save-default nil
      create-lockfiles nil
      python-indent-guess-indent-offset nil)

(defvar e2e-published-findings nil
  "(URI . VERSION) of every publishDiagnostics that had diagnostics, newest first.")

(cl-defmethod eglot-handle-notification :after
  (_server (_method (eql textDocument/publishDiagnostics)) &key uri version diagnostics &allow-other-keys)
  (push (cons uri version) e2e-published)
  (when (> (length diagnostics) 0)
    (push (cons uri version) e2e-published-findings)))

(defun e2e-wait (what predicate)
  "Process events until PREDICATE holds; error after `e2e-timeout' seconds."
  (let ((deadline (+ (float-time) e2e-timeout)))
    (while (not (funcall predicate))
      (when (> (float-time) deadline)
        (error "Timed out after %ss waiting for %s" e2e-timeout what))
      (accept-process-output nil 0.02))))

(defun e2e-goto (line col)
  (goto-char (point-min))
  (forward-line (1- line))
  (forward-char col))

(defun e2e-line-col (pos)
  "0-based line and character column of POS."
  (save-excursion
    (goto-char pos)
    (list (1- (line-number-at-pos pos t)) (- pos (line-beginning-position)))))

(defun e2e-buffer-text ()
  (save-restriction (widen) (buffer-substring-no-properties (point-min) (point-max))))

(defun e2e-diagnostics ()
  "What flymake shows in the current buffer, sorted by position."
  (let ((diags (sort (flymake-diagnostics (point-min) (point-max))
                     (lambda (a b) (< (flymake-diagnostic-beg a) (flymake-diagnostic-beg b))))))
    (vconcat
     (mapcar (lambda (d)
               (let* ((lsp (cdr (assoc 'eglot-lsp-diag (flymake-diagnostic-data d))))
                      (beg (e2e-line-col (flymake-diagnostic-beg d)))
                      (end (e2e-line-col (flymake-diagnostic-end d))))
                 (list :line (nth 0 beg) :col (nth 1 beg) :end_line (nth 0 end) :end_col (nth 1 end)
                       :type (symbol-name (flymake-diagnostic-type d))
                       :text (flymake-diagnostic-text d)
                       :code (or (plist-get lsp :code) :null)
                       :source (or (plist-get lsp :source) :null))))
             diags))))

(defun e2e-this-version-published-p ()
  (when (and e2e-published (null (cdr (car e2e-published))))
    (error "The server published diagnostics without a version: cannot tell which text they are for"))
  (let ((uri (eglot--path-to-uri buffer-file-name)))
    (cl-some (lambda (p) (and (equal (car p) uri) (equal (cdr p) eglot--versioned-identifier)))
             e2e-published)))

(defun e2e-flymake-settled ()
  "Wait for the diagnostics of this buffer version, then let flymake show them."
  (e2e-wait (format "diagnostics for version %s of %s" eglot--versioned-identifier (buffer-name))
            #'e2e-this-version-published-p)
  (flymake-start nil t))   ; runs the eglot backend now, which reports what was published

(defun e2e-flymake-findings ()
  "On open, as a user waits for the squiggles: the first publish of a document in a workspace
may come before the index says who imports it, with what other files could change withheld
(often everything); wait for the publish of this version that has the findings."
  (e2e-flymake-settled)
  (let ((uri (eglot--path-to-uri buffer-file-name)))
    (e2e-wait (format "findings for version %s of %s" eglot--versioned-identifier (buffer-name))
              (lambda () (cl-some (lambda (p) (and (equal (car p) uri) (equal (cdr p) eglot--versioned-identifier)))
                                  e2e-published-findings))))
  (flymake-start nil t))

(defun e2e-go-idle ()
  "What Emacs does once the user has been idle for `eglot-send-changes-idle-time': run eglot's
idle timer, which sends the pending didChange. (Batch Emacs is never idle, so it never fires.)"
  (let ((timer eglot--change-idle-timer))
    (when timer
      (timer-event-handler timer))))     ; dequeues it and runs it, as the idle loop would

(defun e2e-hover (line col)
  (e2e-goto line col)
  (let* ((res (jsonrpc-request (eglot--current-server-or-lose) :textDocument/hover
                               (eglot--TextDocumentPositionParams) :timeout e2e-timeout))
         (contents (and res (plist-get res :contents))))
    (list :line line :col col
          :kind (or (and (listp contents) (plist-get contents :kind)) :null)
          :value (or (if (stringp contents) contents (plist-get contents :value)) :null)
          :range (or (and res (plist-get res :range)) :null))))

(defun e2e-code-action (kind line col)
  "Run `eglot-code-actions' for KIND at LINE/COL the way the command does; return what happened."
  (e2e-goto line col)
  (let* ((prompted :null) (offered :null) (answer :null)
         (before (e2e-buffer-text))
         (tick (buffer-chars-modified-tick))
         ;; A keyboard event, not a mouse click: eglot reads the choice with completing-read.
         (last-nonmenu-event ?\r))
    (cl-letf (((symbol-function 'completing-read)
               (lambda (prompt collection &optional _pred _req _init _hist default &rest _)
                 ;; The user presses RET: the default, which eglot makes the preferred action.
                 (setq prompted prompt
                       offered (vconcat (mapcar (lambda (item) (if (consp item) (car item) item)) collection))
                       answer default)
                 default)))
      (eglot-code-actions (point) (point) kind t))
    (e2e-wait (format "the %s edit in %s" kind (buffer-name))
              (lambda () (/= tick (buffer-chars-modified-tick))))
    (list :kind kind :prompt prompted :offered offered :chosen answer :text_before before
          :text_after_edit (e2e-buffer-text))))

(defvar e2e-t0 (float-time))
(defvar e2e-marks nil)
(defun e2e-mark (what)
  "Remember when WHAT was done (seconds since start), for the report."
  (push (list :what what :at (- (float-time) e2e-t0)) e2e-marks))

(defun e2e-run-file (file)
  (let* ((path (plist-get file :path))
         (buf (progn (e2e-mark (format "visit %s" path)) (find-file-noselect path)))
         (out (list :path path)))
    (switch-to-buffer buf)
    (unless (eq major-mode 'python-mode) (python-mode))
    ;; What a user's init does: eglot-ensure from python-mode-hook; it connects from the next command.
    (eglot-ensure)
    (run-hooks 'post-command-hook)
    (e2e-wait "eglot to manage the buffer" (lambda () (and (eglot-current-server) eglot--managed-mode)))
    (setq e2e-server (eglot-current-server))
    (e2e-mark "managed")
    (e2e-flymake-findings)
    (e2e-mark "diagnostics")
    (setq out (plist-put out :diagnostics (e2e-diagnostics)))
    (setq out (plist-put out :hovers
                         (vconcat (mapcar (lambda (h) (e2e-hover (plist-get h :line) (plist-get h :col)))
                                          (plist-get file :hovers)))))
    (let ((action (plist-get file :action))
          (sweep (plist-get file :sweep)))
      (when action
        (e2e-mark "hovers")
        (let ((done (e2e-code-action (plist-get action :kind) (plist-get action :line) (plist-get action :col))))
          (e2e-mark "action applied")
          (save-buffer)        ; sends didChange, then didSave
          (e2e-mark "saved")
          (e2e-flymake-settled)
          (e2e-mark "diagnostics after")
          (setq out (append out done))))
      ;; A user going through the findings one by one: quick fix the first diagnostic with one
      ;; of these codes, wait until eglot has sent the change (on its idle timer) and the new
      ;; diagnostics are in, again, until none is left.
      (when sweep
        (let ((steps nil))
          (cl-loop repeat 40
                   for target = (cl-find-if (lambda (d) (member (plist-get d :code) sweep))
                                            (append (e2e-diagnostics) nil))
                   while target
                   do (let ((done (e2e-code-action "quickfix" (1+ (plist-get target :line))
                                                   (plist-get target :col))))
                        (e2e-go-idle)
                        (e2e-flymake-settled)
                        (push (list :code (plist-get target :code) :line (plist-get target :line)
                                    :col (plist-get target :col) :title (plist-get done :chosen))
                              steps)))
          (setq out (append out (list :sweep (vconcat (reverse steps)))))
          (save-buffer)
          (e2e-flymake-settled)))
      (when (or action sweep)
        (setq out (append out (list :diagnostics_after (e2e-diagnostics)
                                    :saved (if (buffer-modified-p) :false t)
                                    :version eglot--versioned-identifier
                                    :text_after (e2e-buffer-text))))))
    (push out e2e-files)))

(defun e2e-dump-logs ()
  "Events and stderr buffers of eglot, and *Messages*, into spec.log."
  (let ((log (plist-get e2e-spec :log)))
    (when log
      (let ((buffers (append (cl-remove-if-not (lambda (b) (string-match-p "EGLOT.*events" (buffer-name b)))
                                               (buffer-list))
                             (cl-remove-if-not (lambda (b) (string-match-p "EGLOT.*stderr" (buffer-name b)))
                                               (buffer-list))
                             (list (get-buffer "*Messages*")))))
        (with-temp-file log
          (dolist (b (delq nil buffers))
            (insert (format "===== %s =====\n" (buffer-name b)))
            (insert (with-current-buffer b (buffer-substring-no-properties (point-min) (point-max))))
            (insert "\n")))))))

(defun e2e-write-result (&rest extra)
  (let ((result (append (list :emacs_version emacs-version
                              :eglot_version (let ((desc (cadr (assq 'eglot package-alist))))
                                               (if desc (package-version-join (package-desc-version desc)) :null))
                              :files (vconcat (reverse e2e-files))
                              :marks (vconcat (reverse e2e-marks)))
                        extra)))
    (with-temp-file (plist-get e2e-spec :result)
      (insert (json-serialize result :null-object :null :false-object :false)))))

(condition-case err
    (progn
      (dolist (file (plist-get e2e-spec :files))
        (e2e-run-file file))
      ;; eglot-shutdown signals an error unless the server answers shutdown in time; then it
      ;; sends exit and jsonrpc.el deletes the process at once (so no exit status to check).
      (let ((proc (jsonrpc--process e2e-server)))
        (eglot-shutdown e2e-server nil e2e-timeout t)
        (e2e-wait "the server process to go" (lambda () (not (process-live-p proc))))
        (e2e-dump-logs)
        (e2e-write-result :shutdown_answered t))
      (kill-emacs 0))
  (error
   (ignore-errors (e2e-dump-logs))
   (ignore-errors (e2e-write-result :error (format "%S" err)))
   (message "e2e.el: %S" err)
   (kill-emacs 1)))

;;; e2e.el ends here
