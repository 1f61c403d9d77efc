/** OHIF's configuration for dicom-meta: one DICOMweb data source, this service's /dicomweb.
 *  `python -m local.ohif` (make ohif) serves it in place of the viewer's own, with
 *  DICOMWEB_ROOT replaced by the URL it proxies to the service. */
window.config = {
  name: 'dicom-meta',
  routerBasename: null,
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 3,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  experimentalStudyBrowserSort: false,
  strictZSpacingForVolumeViewport: true,
  groupEnabledModesFirst: true,
  allowMultiSelectExport: false,
  maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 25 },
  showErrorDetails: 'always',
  defaultDataSourceName: 'dicom-meta',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'dicom-meta',
      configuration: {
        friendlyName: 'dicom-meta',
        name: 'dicom-meta',
        wadoUriRoot: 'DICOMWEB_ROOT',
        qidoRoot: 'DICOMWEB_ROOT',
        wadoRoot: 'DICOMWEB_ROOT',
        qidoSupportsIncludeField: true, // includefield is honoured
        supportsWildcard: true, // typed text is sent as *text*: matched by prefix (docs/API.md)
        supportsFuzzyMatching: false, // literal matching only
        supportsReject: false,
        enableStudyLazyLoad: true,
        imageRendering: 'wadors', // frames, one ranged read each
        thumbnailRendering: 'wadors',
        staticWado: false,
        singlepart: false,
        bulkDataURI: { enabled: true }, // the metadata's BulkDataURIs are answered (…/bulkdata/…)
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
};
